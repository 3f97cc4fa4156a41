"""Everything customer health hands to the kernel's registries, from HealthConfig.ready():
the cross-tenant lookups of the tracking paths (SECURITY DEFINER functions), the board's
risk section and the audit actions."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from crm.audit import register_actions
    from health import events, links

    links.register()  # the customer page's tracked links panel
    events.register()  # the business events automation rules react to (crm.events)
    from crm.board import BoardSection, register_section
    from crm.rls import DefinerFunction, register_definer

    # /t/<token>: which tenant's link an unguessable token names (health.signals).
    register_definer(
        DefinerFunction(
            signature="health_link_by_token(text)",
            returns="TABLE (link_id bigint, tenant_id bigint)",
            body=(
                "SELECT l.id, l.tenant_id FROM public.health_trackedlink l"
                " JOIN public.crm_tenant t ON t.id = l.tenant_id"
                " WHERE l.token = $1 AND t.is_active LIMIT 1"
            ),
            reads=("health_trackedlink",),
        )
    )
    # POST /track/<key>/: which tenant a tracking key names (health.signals).
    register_definer(
        DefinerFunction(
            signature="health_settings_by_key(text)",
            returns="TABLE (settings_id bigint, tenant_id bigint)",
            body=(
                "SELECT s.id, s.tenant_id FROM public.health_healthsettings s"
                " JOIN public.crm_tenant t ON t.id = s.tenant_id"
                " WHERE s.track_key = $1 AND t.is_active LIMIT 1"
            ),
            reads=("health_healthsettings",),
        )
    )
    register_actions(
        {
            "health.settings": _("Health weights and bands changed"),
            "health.recompute": _("Health recomputed by hand"),
            "health.link_sent": _("Tracked link created"),
            "health.risk_done": _("Retention task done"),
        }
    )
    # -- the risk list (F34): the board's section, the list's menu entry and export, the
    # rule action giving a new stay its task, the owners' notification of it.
    from crm.exports import register_source
    from crm.navigation import NavItem
    from crm.navigation import register as register_nav
    from crm.notify import EventType, register_event
    from crm.roles import BOARD, CUSTOMER_LIST
    from health import board, risk, views_risk

    register_section(
        BoardSection(
            key="at_risk_customers",
            title=_("At-risk customers"),
            icon="heart-pulse",
            order=20,
            holds=_(
                "Your customers on the risk list, each with the retention step from the "
                "playbook. A task stays until you mark it done or the customer leaves the "
                "list; a customer that comes back brings a new one."
            ),
            source=_("Filled by customer health once it is scored."),
            roles=BOARD,
            items=board.at_risk_items,
            template="health/board_risk.html",
        )
    )
    register_nav(
        NavItem(
            "health_risk",
            _("At-risk customers"),
            "health:risk_list",
            "heart-pulse",
            description=_(
                "Customers whose health score dropped and who have gone quiet, with their "
                "owner and the retention task."
            ),
            roles=CUSTOMER_LIST,
            order=25,
        )
    )
    register_source(views_risk.export_source())
    # The action of the rule "a customer entered the risk list → retention task"
    # (automation; the rule is on for every tenant): gives the stay its task, tells the owner.
    from crm.events import RuleAction, register_action

    register_action(
        RuleAction(
            risk.RETENTION_ACTION,
            _("Retention task from the playbook (risk list)"),
            (events.RISK_ENTERED,),
            risk.retention_task,
        )
    )
    register_event(
        EventType(
            risk.ENTERED_EVENT,
            _("A customer of yours entered the risk list"),
            _("%(count)s customer(s) entered the risk list"),
            _("%(customers)s: see the retention task on your board."),
        )
    )
    # -- the customer page's health panel (health.panels): score, explanation, trend ------
    from crm import contributions
    from health import panels

    contributions.register_panel(
        panels.CUSTOMER_PAGE,
        panels.customer_panel,
        key="health",
        lazy=True,
        title=_("Customer health"),
        order=10,
    )
    # -- the CRM health self-test's signal-triggered actions (crm.selftest) -------------
    from health import selftest

    selftest.register()
