"""Everything opportunities contributes to the kernel's registries (crm.board,
crm.contributions, crm.metrics, crm.exports, crm.navigation), registered once from
OpportunitiesConfig.ready()."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from crm.board import BoardSection, register_section

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

    from opportunities import contributions

    contributions.register()
