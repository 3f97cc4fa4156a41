from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpportunitiesConfig(AppConfig):
    name = "opportunities"
    verbose_name = _("Opportunities")

    def ready(self) -> None:
        from crm import roles
        from opportunities import facts

        # Orders won, a fact customer health's back-test reads (crm.customer_facts).
        facts.register()
        from crm.audit import register_actions
        from crm.notify import EventType, register_event

        register_event(
            EventType(
                "opportunity.validity_requested",
                _("An opportunity waits for my validity approval"),
                _("%(requester)s asks you to approve %(opportunity)s as valid"),
                _(
                    "Approve or refuse it within 72 hours of the request; after that it must be"
                    " asked again."
                ),
                roles=roles.VALIDITY_APPROVERS,
            )
        )
        register_actions(
            {
                "opportunity.create": _("Opportunity opened"),
                "opportunity.update": _("Opportunity edited"),
                "opportunity.advance": _("Opportunity moved to a stage"),
                "opportunity.win": _("Opportunity won"),
                "opportunity.lose": _("Opportunity lost"),
                "opportunity.attach": _("File attached to an opportunity"),
                "opportunity.contract_effective": _("Contract marked 已生效"),
                "opportunity.question": _("Technical question marked"),
                "opportunity.chain_add": _("Decision-chain member mapped"),
                "opportunity.chain_update": _("Decision-chain member changed"),
                "opportunity.chain_remove": _("Decision-chain member removed"),
                "opportunity.validity_request": _("Validity approval requested"),
                "opportunity.validity_approve": _("Validity approved"),
                "opportunity.validity_reject": _("Validity refused"),
            }
        )
        # What the other rooms contribute: the board's section, the customer and lead
        # pages' panels and timelines, the metrics, the export source, the nav item.
        from opportunities import events, registrations

        events.register()  # the business events automation rules react to (crm.events)

        registrations.register()
