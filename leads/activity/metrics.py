"""The activity index's figures in the kernel's metric registry (crm.metrics), group
"activity", registered from LeadsConfig.ready().

Their rows are one day's: the rows the nightly run wrote for the last day of the range
(`day = end`), so "today" is a range of one day and a longer range reads its last day.
The lead figures count LeadActivity rows (one per open lead); the reps' average reads
RepActivity rows (one per rep)."""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    MEDIAN,
    REGION,
    REP,
    Column,
    Dimension,
    Metric,
    Rate,
    RowLink,
    register_metric,
    register_rate,
)
from crm.models import Tenant
from leads.activity.compute import FOLLOW_UPS_WANTED, RESCUE_BELOW, ROLES_WANTED
from leads.models import Lead, LeadActivity, RepActivity

GROUP = "activity"
SECTION = _("Lead activity")
CHANNEL = "channel"  # the dimension key of a lead's channel


def _column(model, path: str) -> Column:
    first, *rest = path.split("__")
    field = model._meta.get_field(first)
    if rest and first == "lead":
        field = Lead._meta.get_field(rest[0])
    return Column(path, capfirst(field.verbose_name))


LEAD_COLUMNS = tuple(
    _column(LeadActivity, path)
    for path in (
        "lead__company",
        "lead__contact_name",
        "lead__channel__name",
        "owner__user__username",
        "idle_days",
        "follow_ups",
        "roles",
        "freshness",
        "density",
        "coverage",
        "score",
    )
)
LEAD_DIMENSIONS = (
    Dimension(REGION, "lead__province"),
    Dimension(REP, "owner"),
    Dimension(CHANNEL, "lead__channel", _("channel")),
)
LINK = RowLink("leads:detail", "lead__public_id")


def leads_on_day(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The open leads scored for the range's last day."""
    return LeadActivity.objects.filter(tenant=tenant, day=end)


def reps_on_day(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The reps' rows of the range's last day."""
    return RepActivity.objects.filter(tenant=tenant, day=end)


def register() -> None:
    lead_metrics = (
        (
            "scored",
            _("Open leads scored"),
            _("Open leads (owned, not invalid, no won or lost outcome) scored on the day."),
            None,
        ),
        (
            "below",
            _("Leads below 75"),
            _("Open leads whose activity index was below 75 on the day: the rescue lists."),
            Q(score__lt=RESCUE_BELOW),
        ),
        (
            "stale",
            _("Not updated within 7 days"),
            _("Open leads with no update (touch, follow-up, timeline entry) in the 7 days."),
            Q(freshness=0),
        ),
        (
            "thin",
            _("Fewer than 3 follow-ups in 30 days"),
            _("Open leads with fewer than 3 follow-ups logged on them in the 30 days."),
            Q(follow_ups__lt=FOLLOW_UPS_WANTED),
        ),
        (
            "narrow",
            _("Fewer than 2 decision-chain roles"),
            _("Open leads whose owner has reached fewer than 2 decision-chain roles."),
            Q(roles__lt=ROLES_WANTED),
        ),
    )
    for name, label, definition, where in lead_metrics:
        register_metric(
            Metric(
                key=f"leads.activity_{name}",
                label=label,
                definition=definition,
                rows=leads_on_day,
                where=where,
                aggregate=COUNT,
                columns=LEAD_COLUMNS,
                dimensions=LEAD_DIMENSIONS,
                link=LINK,
                section=SECTION,
                group=GROUP,
            )
        )
    register_metric(
        Metric(
            key="leads.activity_median_score",
            label=_("Median activity index"),
            definition=_("The median activity index of the open leads scored on the day."),
            rows=leads_on_day,
            aggregate=MEDIAN,
            of="score",
            columns=LEAD_COLUMNS,
            dimensions=LEAD_DIMENSIONS,
            link=LINK,
            section=SECTION,
            group=GROUP,
        )
    )
    register_metric(
        Metric(
            key="leads.activity_rep_average",
            label=_("Rep's average activity index"),
            definition=_(
                "The average activity index of a rep's open leads on the day; over several "
                "reps, the median of their averages."
            ),
            rows=reps_on_day,
            aggregate=MEDIAN,
            of="average",
            columns=tuple(
                _column(RepActivity, path)
                for path in ("owner__user__username", "leads", "below", "average")
            ),
            dimensions=(Dimension(REP, "owner"),),
            section=SECTION,
            group=GROUP,
        )
    )
    register_rate(
        Rate(
            key="leads.activity_below_share",
            label=_("Share of open leads below 75"),
            definition=_("Open leads below 75 on the day, divided by the open leads scored."),
            numerator="leads.activity_below",
            denominator="leads.activity_scored",
            higher_is_better=False,
            section=SECTION,
            group=GROUP,
            advice=_(
                "Work the rescue list on each rep's board: contact the stale leads, log the "
                "missing follow-ups, reach a second decision-chain role."
            ),
        )
    )
