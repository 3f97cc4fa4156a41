"""The leads app's water levels (F42, crm.levels) and the metrics of the rows behind them
(crm.metrics), registered from LeadsConfig.ready().

- Response time: the median minutes from a lead's assignment to its first touch, over the
  leads assigned on the day (their latest assignment: a lead handed on is counted on the
  day of its new owner). A lead not touched yet counts with its wait so far (assignment
  to now), so leaving leads untouched raises the median instead of hiding them; a lead
  whose first touch came before its latest assignment (a verified lead handed on keeps
  its touches) has no response of that owner to measure and is left out. Target per
  tenant: the SLA policy's sales model, ≤ 2 h for B2B (the default), ≤ 15 min for B2C.
- Process-data completeness: the share of the day's follow-ups on leads (kind
  follow-up; the verification call is the verdict, not a process record) that record
  what was said (at least one talk tag) and whom it reached (at least one decision-chain
  role): the two structured answers the follow-up form leaves optional. Target ≥ 85 %.

A rep's value is over the leads they own (response time) or the follow-ups they logged.
"""

from __future__ import annotations

from datetime import date

from django.db.models import DateTimeField, F, FloatField, Func, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.levels import MINUTES, SHARE, Level, median_of, register_level, share_of
from crm.metrics import (
    COUNT,
    MEDIAN,
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
from customers.models import Interaction, InteractionKind
from leads.models import RESPONSE_TARGET_MINUTES, Lead, SalesModel, SlaPolicy

SECTION = _("Leads")
GROUP = "levels"
LINK = RowLink("leads:detail", "public_id")

RESPONSE_METRIC = "leads.response_wait"
FOLLOW_UPS_METRIC = "leads.followups_logged"
STRUCTURED_METRIC = "leads.followups_structured"

PROCESS_TARGET = 0.85


class TransactionNow(Func):
    """The transaction's start (CURRENT_TIMESTAMP): unlike Django's Now() on PostgreSQL
    (the statement's), the same for a figure and its drill-down read in one transaction."""

    template = "CURRENT_TIMESTAMP"
    output_field = DateTimeField()


class EpochMinutes(Func):
    """An interval in minutes (PostgreSQL: EXTRACT(EPOCH FROM …) / 60)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s) / 60.0"
    output_field = FloatField()


def assigned_in(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The tenant's leads whose latest assignment to a rep fell on its local days
    [start, end], with `response_minutes`: to the first touch, or the wait so far."""
    since, until = period_bounds(tenant, start, end)
    return (
        Lead.objects.filter(
            tenant=tenant, owner__isnull=False, assigned_at__gte=since, assigned_at__lt=until
        )
        .filter(Q(first_touch_at__isnull=True) | Q(first_touch_at__gte=F("assigned_at")))
        .annotate(
            response_minutes=EpochMinutes(
                Coalesce("first_touch_at", TransactionNow()) - F("assigned_at")
            )
        )
    )


def follow_ups_on(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The follow-ups logged on the tenant's leads on its local days [start, end]."""
    since, until = period_bounds(tenant, start, end)
    return Interaction.objects.filter(
        tenant=tenant,
        kind=InteractionKind.FOLLOW_UP,
        lead__isnull=False,
        at__gte=since,
        at__lt=until,
    )


def structured_q() -> Q:
    """A follow-up that records what was said and whom it reached."""
    return ~Q(talk_tags=[]) & ~Q(roles=[])


def response_target(tenant: Tenant) -> float:
    """The tenant's response-time target in minutes, from its SLA policy's sales model."""
    model = (
        SlaPolicy.objects.filter(tenant=tenant).values_list("sales_model", flat=True).first()
        or SalesModel.B2B
    )
    return float(RESPONSE_TARGET_MINUTES[SalesModel(model)])


def _lead_column(path: str, label=None) -> Column:
    first = path.split("__", 1)[0]
    return Column(path, label or capfirst(Lead._meta.get_field(first).verbose_name))


RESPONSE_COLUMNS = (
    _lead_column("public_id"),
    _lead_column("company"),
    _lead_column("contact_name"),
    _lead_column("owner__user__username"),
    _lead_column("assigned_at"),
    _lead_column("first_touch_at"),
    Column("response_minutes", _("Minutes to first touch (or waited so far)")),
)

FOLLOW_UP_COLUMNS = (
    Column("at", _("At")),
    Column("by__user__username", _("Rep")),
    Column("lead__company", _("Company")),
    Column("lead__contact_name", _("Contact")),
    Column("channel", _("Channel")),
    Column("talk_tags", _("Talk tags")),
    Column("roles", _("Decision-chain roles reached")),
    Column("note", _("Note")),
)
FOLLOW_UP_LINK = RowLink("leads:detail", "lead__public_id")
FOLLOW_UP_DIMENSIONS = (Dimension(REGION, "lead__province"), Dimension(REP, "by"))


def register() -> None:
    register_metric(
        Metric(
            key=RESPONSE_METRIC,
            label=_("Response time (median)"),
            definition=_(
                "The median minutes from a lead's assignment to its first touch, over the "
                "leads assigned in the range; a lead not touched yet counts with its wait "
                "so far."
            ),
            rows=assigned_in,
            aggregate=MEDIAN,
            of="response_minutes",
            unit="minutes",
            columns=RESPONSE_COLUMNS,
            dimensions=(Dimension(REGION, "province"), Dimension(REP, "owner")),
            dated_by="assigned_at",
            link=LINK,
            section=SECTION,
            group=GROUP,
        )
    )
    register_metric(
        Metric(
            key=FOLLOW_UPS_METRIC,
            label=_("Follow-ups logged on leads"),
            definition=_("The follow-ups the reps logged on leads in the range."),
            rows=follow_ups_on,
            aggregate=COUNT,
            columns=FOLLOW_UP_COLUMNS,
            dimensions=FOLLOW_UP_DIMENSIONS,
            dated_by="at",
            link=FOLLOW_UP_LINK,
            section=SECTION,
            group=GROUP,
        )
    )
    register_metric(
        Metric(
            key=STRUCTURED_METRIC,
            label=_("Follow-ups with their process data"),
            definition=_(
                "Follow-ups logged on leads in the range that record at least one talk tag "
                "and at least one decision-chain role reached."
            ),
            rows=follow_ups_on,
            where=structured_q(),
            aggregate=COUNT,
            columns=FOLLOW_UP_COLUMNS,
            dimensions=FOLLOW_UP_DIMENSIONS,
            dated_by="at",
            link=FOLLOW_UP_LINK,
            section=SECTION,
            group=GROUP,
        )
    )
    register_level(
        Level(
            key="leads.response",
            label=_("Response time"),
            definition=_(
                "The median time from a lead's assignment to its first touch, over the "
                "leads assigned that day; a lead not touched yet counts with its wait so far."
            ),
            target=response_target,
            higher_is_better=False,
            unit=MINUTES,
            compute=median_of(RESPONSE_METRIC),
            metric=RESPONSE_METRIC,
            floor=5.0,
            min_sample=2,
            order=10,
            advice=_(
                "Call new leads first thing: the board lists the ones to verify, oldest first."
            ),
        )
    )
    register_level(
        Level(
            key="leads.process_data",
            label=_("Process-data completeness"),
            definition=_(
                "The share of the day's follow-ups on leads that record what was said (a "
                "talk tag) and whom it reached (a decision-chain role)."
            ),
            target=PROCESS_TARGET,
            higher_is_better=True,
            unit=SHARE,
            compute=share_of(STRUCTURED_METRIC, FOLLOW_UPS_METRIC),
            metric=FOLLOW_UPS_METRIC,
            floor=0.1,
            min_sample=5,
            order=20,
            advice=_(
                "Tick the talk tags and the roles reached when logging a follow-up, not "
                "just the next action."
            ),
        )
    )
