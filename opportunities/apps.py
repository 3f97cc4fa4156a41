from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpportunitiesConfig(AppConfig):
    name = "opportunities"
    verbose_name = _("Opportunities")

    def ready(self) -> None:
        from crm.board import BoardSection, register_section

        # The daily board's section (crm.board): only its slot until opportunities are
        # tracked in the CRM; then `items` lists the member's stalled ones.
        register_section(
            BoardSection(
                key="stalled_opportunities",
                title=_("Stalled opportunities"),
                icon="hourglass-split",
                order=10,
                holds=_(
                    "Your opportunities that have not moved to their next stage in time, with "
                    "the action each stage requires."
                ),
                source=_("Filled by opportunities once they are tracked in the CRM."),
            )
        )
