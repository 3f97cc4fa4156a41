from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = _("Leads")

    def ready(self) -> None:
        from crm.audit import register_actions
        from crm.navigation import REPORTS, NavItem, register
        from crm.rls import DefinerFunction, register_definer
        from crm.roles import IMPORTERS, LEAD_LIST, OWNERS, REPORT_READERS, SALES_MANAGERS
        from leads import notifications
        from leads.assignment import sla

        # The webhook's and the hosted form's one cross-tenant read: which channel (and
        # tenant) an unguessable key names; leads.access.channel_by_key().
        register_definer(
            DefinerFunction(
                signature="leads_channel_by_key(text)",
                returns="TABLE (channel_id bigint, tenant_id bigint)",
                body=(
                    "SELECT c.id, c.tenant_id FROM public.leads_channel c"
                    " JOIN public.crm_tenant t ON t.id = c.tenant_id"
                    " WHERE c.key = $1 AND c.is_active AND t.is_active LIMIT 1"
                ),
                reads=("leads_channel",),
            )
        )

        notifications.register()
        sla.register()
        from leads import rep_days

        rep_days.connect()  # the active days rebuilt when a tenant's time zone changes
        from leads import events

        events.register()  # the business events automation rules react to (crm.events)
        from leads import exports

        exports.register()  # the lead list's background export (crm.exports)
        register_actions(
            {
                "assignment.policy_published": _("Assignment policy published"),
                "channel.create": _("Channel created"),
                "channel.rotate_secret": _("Channel secret replaced"),
                "import.confirm": _("Import confirmed"),
                "lead.reassigned": _("Lead reassigned"),
                "lead.returned_to_pool": _("Lead returned to the pool"),
                "lead.verified": _("Lead verified"),
                "rep.zone_lifted": _("Observation zone lifted"),
            }
        )

        register(
            NavItem(
                "leads",
                _("Leads"),
                "leads:list",
                "inbox",
                description=_(
                    "Every lead from every channel: tags, revisits, suspects, the raw payloads."
                ),
                roles=LEAD_LIST,
                order=10,
            )
        )
        register(
            NavItem(
                "lead_import",
                _("Import leads"),
                "leads:import",
                "upload",
                description=_("Bring in a CSV or Excel list: preview, fix, confirm."),
                roles=IMPORTERS,
                order=20,
                in_navbar=False,
            )
        )
        register(
            NavItem(
                "my_profile",
                _("My profile"),
                "leads:my_profile",
                "person-badge",
                description=_(
                    "What leads are matched to you on, your load, your zone and your share"
                    " of leads."
                ),
                roles=OWNERS,
                order=15,
            )
        )
        register(
            NavItem(
                "why_not",
                _("Why didn't I get a lead?"),
                "leads:why_not",
                "question-circle",
                description=_("Look up a lead you expected and see why it went elsewhere."),
                roles=OWNERS,
                order=16,
                in_navbar=False,
            )
        )
        register(
            NavItem(
                "assignment_policy",
                _("Assignment rules"),
                "admin:leads_assignmentpolicy_changelist",
                "sliders",
                description=_(
                    "Score rules and weights, rep profiles and SLA thresholds; replay a draft"
                    " over the last days before applying it."
                ),
                roles=SALES_MANAGERS,
                order=30,
                in_navbar=False,
            )
        )
        register(
            NavItem(
                "lead_quality",
                _("Lead quality"),
                "lead_reports:lead_quality",
                "bar-chart",
                group=REPORTS,
                description=_(
                    "Per channel, source grade and rep: delivered, verified and valid within"
                    " 24 h, invalid reasons, duplicates, suspects, follow-ups within 72 h."
                ),
                roles=REPORT_READERS,
                order=50,
            )
        )
        from crm.navigation import register_home_card
        from leads.assignment.views import training_card
        from leads.home import customer_leads_card

        register_home_card(training_card)
        register_home_card(customer_leads_card)
        from leads import customer_page

        customer_page.register()  # the customer page's leads and their trail
        from leads.board import views as board_views
        from leads.reports import levels, metrics, tiles

        board_views.register()
        # The lead figures in the kernel's metric registry (crm.metrics).
        metrics.register()
        # The response-time and process-data water levels (crm.levels), with their rows.
        levels.register()
        tiles.register()  # the manager dashboard's tiles, on those metrics

        from leads.reports import practice, process

        # The sales process figures (group "process") and the colleague's practice the
        # weekly diagnosis shows (crm.process).
        process.register()
        practice.register()

        from leads import selftest

        selftest.register()  # the CRM health self-test's indicators (crm.selftest)

        self._register_activity()

    def _register_activity(self) -> None:
        """The lead activity index (F41): its figures and the board's rescue list."""
        from crm.board import BoardSection, register_section
        from crm.roles import BOARD
        from leads.activity import metrics as activity_metrics
        from leads.activity.rescue import rescue_items

        activity_metrics.register()
        register_section(
            BoardSection(
                key="rescue_leads",
                title=_("Leads to rescue"),
                icon="life-preserver",
                order=30,
                holds=_(
                    "Your open leads whose activity index fell below 75 last night, each "
                    "with what is missing: an update within 7 days, 3 follow-ups in 30 "
                    "days, 2 decision-chain roles reached."
                ),
                source=_("Filled by the nightly activity index, after midnight."),
                roles=BOARD,
                items=rescue_items,
                template="leads/board_rescue.html",
            )
        )
