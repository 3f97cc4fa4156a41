"""Everything opportunities contributes to the kernel's registries (crm.board,
crm.contributions, crm.metrics, crm.exports, crm.navigation), registered once from
OpportunitiesConfig.ready()."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from crm.board import BoardSection, register_section
    from crm.roles import BOARD
    from opportunities.board import stalled_items

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
            source=_(
                "Opportunities you own, once they are opened on a customer or a verified lead."
            ),
            roles=BOARD,
            items=stalled_items,
            template="opportunities/board_stalled.html",
        )
    )

    from opportunities import cycle_metrics, levels, metrics, process, tiles

    metrics.register()
    cycle_metrics.register()  # the lead-to-contract cycle (F38)
    levels.register()  # the decision-chain water level (crm.levels), with its rows
    process.register()  # the sales process figures (group "process", crm.process)
    tiles.register()  # the manager dashboard's tiles, on those metrics

    from opportunities import selftest

    selftest.register()  # the CRM health self-test's indicators (crm.selftest)

    # A lead from which an opportunity was won or lost is not open any more: the lead
    # activity index (F41) leaves it out.
    from leads.activity.compute import register_outcome

    register_outcome(
        "opportunities",
        "EXISTS (SELECT 1 FROM opportunities_opportunity o WHERE o.tenant_id = l.tenant_id"
        " AND o.origin_lead_id = l.id AND o.status IN ('won', 'lost'))",
    )

    from crm.exports import register_source
    from crm.navigation import REPORTS, NavItem
    from crm.navigation import register as register_nav
    from crm.roles import AMOUNT_HIDDEN, OPPORTUNITY_LIST, OWNERS, REPORT_READERS
    from opportunities import exports

    # The table's background export (crm.exports): the rows its streamed CSV sends.
    register_source(exports.source())
    register_nav(
        NavItem(
            "opportunities",
            _("Opportunities"),
            "opportunities:kanban",
            "kanban",
            description=_(
                "The pipeline by stage: drag a card on when its required actions are done;"
                " the table with filters and CSV."
            ),
            roles=OPPORTUNITY_LIST,
            order=14,
        )
    )
    register_nav(
        NavItem(
            "lead_cycle",
            _("Lead-to-contract cycle"),
            "opportunity_reports:cycle",
            "hourglass-bottom",
            group=REPORTS,
            description=_(
                "Per monthly cohort of leads: contracts won, the median days from lead to"
                " contract and their spread, the share still open after 120 days."
            ),
            roles=REPORT_READERS | OWNERS,
            order=52,
            in_navbar=False,
        )
    )
    register_nav(
        NavItem(
            "forecast",
            _("Forecast"),
            "opportunities:forecast",
            "graph-up-arrow",
            group=REPORTS,
            description=_(
                "The weighted forecast by month, what was signed against each frozen one,"
                " and the stage probabilities learnt from the tenant's history."
            ),
            roles=OPPORTUNITY_LIST - AMOUNT_HIDDEN,
            order=15,
            in_navbar=False,
        )
    )

    from opportunities import contributions

    contributions.register()
