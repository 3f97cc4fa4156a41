"""The decision-chain water level (F42, crm.levels) and the metrics of the rows behind it
(crm.metrics), registered from opportunities.registrations.

Decision-chain completeness: the share of the opportunities open at the end of the day
whose decision chain (F22) names every required role of the tenant (`ChainRole.required`,
active roles; the defaults: the CIO, the purchasing director and the technical evaluator)
with a member whose attitude is known (supports, watching or opposes: not "unknown").
The chains are read as they are when the level is computed (the nightly job: just after
the day ends). A tenant with no required role has no such level: no rows, no value.
Target ≥ 70 %. A rep's value is over the opportunities they own.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.levels import SHARE, Level, register_level, share_of
from crm.metrics import (
    COUNT,
    REGION,
    REP,
    Column,
    Dimension,
    Metric,
    RowLink,
    period_bounds,
    register_metric,
)
from crm.models import Tenant
from opportunities.models import (
    Attitude,
    ChainRole,
    Opportunity,
    OpportunityContact,
    OpportunityStatus,
)

OPEN_METRIC = "opportunities.open_chains"
COMPLETE_METRIC = "opportunities.complete_chains"
CHAIN_TARGET = 0.70
SECTION = _("Opportunities")
GROUP = "levels"


def required_roles(tenant: Tenant) -> QuerySet:
    return ChainRole.objects.filter(tenant=tenant, required=True, is_active=True)


def open_at_end(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The tenant's opportunities open at the end of its local day `end` (opened before
    it ended, not won or lost by then), with `chain_complete`: every required role has a
    member of known attitude. None at all when the tenant requires no role."""
    _since, until = period_bounds(tenant, end, end)
    still_open = Q(status=OpportunityStatus.OPEN)
    if until <= timezone.now():  # closed since: open then (today's end: nothing closed yet)
        still_open |= Q(won_at__gte=until) | Q(lost_at__gte=until)
    filled = OpportunityContact.objects.filter(
        opportunity=OuterRef(OuterRef("pk")), role=OuterRef("pk")
    ).exclude(attitude=Attitude.UNKNOWN)
    missing = required_roles(tenant).exclude(Exists(filled))
    return (
        Opportunity.objects.filter(tenant=tenant, created_at__lt=until)
        .filter(still_open)
        .filter(Exists(required_roles(tenant)))
        .annotate(chain_complete=~Exists(missing))
    )


def _column(path: str) -> Column:
    first = path.split("__", 1)[0]
    return Column(path, capfirst(Opportunity._meta.get_field(first).verbose_name))


COLUMNS = (
    *(
        _column(p)
        for p in ("public_id", "name", "customer__name", "owner__user__username", "stage__name")
    ),
    _column("created_at"),
    Column("chain_complete", _("Decision chain complete")),
)
DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "owner"))
LINK = RowLink("opportunities:detail", "public_id")


def register() -> None:
    register_metric(
        Metric(
            key=OPEN_METRIC,
            label=_("Open opportunities (decision chain)"),
            definition=_(
                "The opportunities open at the end of the range, when the tenant marks "
                "decision-chain roles as required."
            ),
            rows=open_at_end,
            aggregate=COUNT,
            columns=COLUMNS,
            dimensions=DIMENSIONS,
            link=LINK,
            section=SECTION,
            group=GROUP,
        )
    )
    register_metric(
        Metric(
            key=COMPLETE_METRIC,
            label=_("Complete decision chains"),
            definition=_(
                "Opportunities open at the end of the range whose decision chain names "
                "every required role with a known attitude."
            ),
            rows=open_at_end,
            where=Q(chain_complete=True),
            aggregate=COUNT,
            columns=COLUMNS,
            dimensions=DIMENSIONS,
            link=LINK,
            section=SECTION,
            group=GROUP,
        )
    )
    register_level(
        Level(
            key="opportunities.decision_chain",
            label=_("Decision-chain completeness"),
            definition=_(
                "The share of the opportunities open at the end of the day whose decision "
                "chain names every required role with a known attitude."
            ),
            target=CHAIN_TARGET,
            higher_is_better=True,
            unit=SHARE,
            compute=share_of(COMPLETE_METRIC, OPEN_METRIC),
            metric=OPEN_METRIC,
            floor=0.15,
            min_sample=5,
            order=30,
            advice=_(
                "Map the required roles on each open opportunity and record where each one stands."
            ),
        )
    )
