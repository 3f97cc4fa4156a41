"""Everything customer health hands to the kernel's registries, from HealthConfig.ready():
the cross-tenant lookups of the tracking paths (SECURITY DEFINER functions), the board's
risk section and the audit actions."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from crm.audit import register_actions
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
    # The daily board's section (crm.board): the member's customers on the risk list with
    # their retention task (health.board fills it).
    register_section(
        BoardSection(
            key="at_risk_customers",
            title=_("At-risk customers"),
            icon="heart-pulse",
            order=20,
            holds=_("Your customers whose health score dropped, with the playbook step to take."),
            source=_("Filled by customer health once it is scored."),
        )
    )
    # -- the customer page's health panel (health.panels): score, explanation, trend ------
    from crm import contributions
    from health import panels

    contributions.register_panel(panels.CUSTOMER_PAGE, panels.customer_panel, key="health")
