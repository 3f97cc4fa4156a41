"""The opportunities app's metrics in the kernel's registry (crm.metrics), registered from
opportunities.registrations: what the pipeline opened, won and lost over the tenant's
local days [start, end].

Each metric's rows are a queryset of the tenant's opportunities dated in the range by the
event the figure counts (created_at, won_at, lost_at); its figure is their count, or the
sum of their amounts, so a figure and its drill-down cannot disagree.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    SUM,
    Column,
    Dimension,
    Metric,
    RowLink,
    period_bounds,
    register_metric,
)
from crm.models import Tenant
from opportunities.models import Opportunity, OpportunityStatus


def _column(path: str) -> Column:
    """A drill-down column headed by the verbose name of the path's first field."""
    first = path.split("__", 1)[0]
    return Column(path, capfirst(Opportunity._meta.get_field(first).verbose_name))


BASE = ("public_id", "name", "customer__name", "owner__user__username", "stage__name")
CREATED_COLUMNS = tuple(_column(p) for p in (*BASE, "created_at", "amount", "status", "is_valid"))
WON_COLUMNS = tuple(_column(p) for p in (*BASE, "won_at", "amount"))
LOST_COLUMNS = tuple(_column(p) for p in (*BASE, "lost_at", "lost_reason__name", "amount"))


def _dated(field: str):
    """A family's rows: the tenant's opportunities with `field` in the period."""

    def rows(tenant: Tenant, start: date, end: date) -> QuerySet:
        since, until = period_bounds(tenant, start, end)
        return Opportunity.objects.filter(
            tenant=tenant, **{f"{field}__gte": since, f"{field}__lt": until}
        )

    return rows


created_in = _dated("created_at")
won_in = _dated("won_at")
lost_in = _dated("lost_at")
# An opportunity's region is its customer's province; its rep, its owner.
DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "owner"))
LINK = RowLink("opportunities:detail", "public_id")
SECTION = _("Opportunities")


WON = Q(status=OpportunityStatus.WON)
LOST = Q(status=OpportunityStatus.LOST)


def register() -> None:
    register_metric(
        Metric(
            key="opportunities.created",
            label=_("Opportunities opened"),
            definition=_("Every opportunity opened in the range, whatever became of it."),
            rows=created_in,
            dimensions=DIMENSIONS,
            dated_by="created_at",
            link=LINK,
            section=SECTION,
            aggregate=COUNT,
            columns=CREATED_COLUMNS,
        )
    )
    register_metric(
        Metric(
            key="opportunities.valid_created",
            label=_("Valid opportunities opened"),
            definition=_(
                "Opportunities opened in the range that are valid now: a visit or meeting "
                "logged, a budget band, a requirement document or competitor table, and a "
                "manager's approval."
            ),
            rows=created_in,
            where=Q(is_valid=True),
            dimensions=DIMENSIONS,
            dated_by="created_at",
            link=LINK,
            section=SECTION,
            aggregate=COUNT,
            columns=CREATED_COLUMNS,
        )
    )
    register_metric(
        Metric(
            key="opportunities.won",
            label=_("Opportunities won"),
            definition=_("Opportunities won (the signed contract in force) in the range."),
            rows=won_in,
            where=WON,
            dimensions=DIMENSIONS,
            dated_by="won_at",
            link=LINK,
            section=SECTION,
            aggregate=COUNT,
            columns=WON_COLUMNS,
        )
    )
    register_metric(
        Metric(
            key="opportunities.won_amount",
            label=_("Amount signed"),
            definition=_(
                "The amounts of the opportunities won in the range (those without an "
                "amount add nothing and are not listed)."
            ),
            rows=won_in,
            where=WON & Q(amount__isnull=False),
            dimensions=DIMENSIONS,
            dated_by="won_at",
            link=LINK,
            section=SECTION,
            aggregate=SUM,
            of="amount",
            unit="amount",
            columns=WON_COLUMNS,
        )
    )
    register_metric(
        Metric(
            key="opportunities.lost",
            label=_("Opportunities lost"),
            definition=_("Opportunities closed as lost in the range, with their reasons."),
            rows=lost_in,
            where=LOST,
            dimensions=DIMENSIONS,
            dated_by="lost_at",
            link=LINK,
            section=SECTION,
            aggregate=COUNT,
            columns=LOST_COLUMNS,
        )
    )
