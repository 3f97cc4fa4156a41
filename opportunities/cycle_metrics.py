"""The lead-to-contract cycle's figures (F38) in the kernel's metric registry
(crm.metrics), group "cycle", registered from opportunities.registrations.

A range [start, end] is a **cohort**: the leads created on those local days (the
tenant's time zone; the report's cohorts are calendar months). Two families of rows:

- the cohort's **leads** (leads.Lead created in the range): all of them, the valid ones
  (verified valid, or an opportunity was opened from them), the valid ones at least
  OPEN_AFTER_DAYS (120) days old at the start of today, and of those the ones still open
  then: no opportunity opened from them was won or lost within 120 days of the lead's
  creation;
- the **contracts** won from them (opportunities with the status won whose origin lead is
  in the cohort): their count, the median of their lead-to-contract days (the
  opportunity's `lead_to_contract_days`: from the lead's first screening, its
  verification or else its creation, to the signature), and how many fall in each
  bucket of days (BUCKETS). A won opportunity without a recorded cycle counts as won
  and in no bucket nor median.

Both families break down by the lead's owner (REP), channel (CHANNEL), province (REGION)
and creation month (COHORT: the first day of the month, in the tenant's time zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.functional import lazy
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
    period_bounds,
    register_metric,
    register_rate,
)
from crm.models import Tenant
from leads.models import Lead, Verification
from opportunities.models import Opportunity, OpportunityStatus

GROUP = "cycle"
SECTION = _("Lead-to-contract cycle")
CHANNEL = "channel"  # the dimension key of the lead's channel
COHORT = "cohort"  # the lead's creation month (a date: its first day)
OPEN_AFTER_DAYS = 120
# The histogram's buckets of lead-to-contract days: (key, label, lowest, highest or None).
BUCKETS = (
    ("0_30", "0–30", 0, 30),
    ("31_60", "31–60", 31, 60),
    ("61_90", "61–90", 61, 90),
    ("91_120", "91–120", 91, 120),
    ("121_180", "121–180", 121, 180),
    ("over_180", ">180", 181, None),
)

LEADS = "opportunities.cycle_leads"
VALID = "opportunities.cycle_valid"
MATURED = "opportunities.cycle_matured"
OPEN_120 = "opportunities.cycle_open_120"
OPEN_SHARE = "opportunities.cycle_open_120_share"
WON = "opportunities.cycle_won"
MEDIAN_DAYS = "opportunities.cycle_median_days"


def bucket_key(name: str) -> str:
    return f"opportunities.cycle_days_{name}"


# -- rows --------------------------------------------------------------------------------


def cohort_leads(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The leads created on the tenant's local days [start, end], with their month."""
    since, until = period_bounds(tenant, start, end)
    return Lead.objects.filter(tenant=tenant, created_at__gte=since, created_at__lt=until).annotate(
        cohort=TruncMonth("created_at", tzinfo=tenant.tzinfo)
    )


def cohort_contracts(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The opportunities won from those leads, with their lead's month."""
    since, until = period_bounds(tenant, start, end)
    return Opportunity.objects.filter(
        tenant=tenant,
        status=OpportunityStatus.WON,
        origin_lead__created_at__gte=since,
        origin_lead__created_at__lt=until,
    ).annotate(cohort=TruncMonth("origin_lead__created_at", tzinfo=tenant.tzinfo))


# -- conditions --------------------------------------------------------------------------


def valid_q() -> Q:
    """A valid lead: verified valid, or an opportunity was opened from it (the lead's
    `has_opportunity`, kept by this app's triggers: migration 0007)."""
    return Q(verification__in=list(Verification.valid())) | Q(has_opportunity=True)


def matured_since(tenant: Tenant, now: datetime | None = None) -> datetime:
    """The latest creation time of a lead OPEN_AFTER_DAYS old at the start of the tenant's
    today (120 × 24 hours before it)."""
    today = timezone.localdate(now or timezone.now(), timezone=tenant.tzinfo)
    start = datetime.combine(today, time(0), tzinfo=tenant.tzinfo).astimezone(UTC)
    return start - timedelta(days=OPEN_AFTER_DAYS)


def matured_q(tenant: Tenant) -> Q:
    return valid_q() & Q(created_at__lte=matured_since(tenant))


def open_at_120_q(tenant: Tenant) -> Q:
    """Matured, and no opportunity from it won or lost within 120 days of its creation."""
    limit = OuterRef("created_at") + timedelta(days=OPEN_AFTER_DAYS)
    closed = Opportunity.objects.filter(origin_lead=OuterRef("pk")).filter(
        Q(status=OpportunityStatus.WON, won_at__lte=limit)
        | Q(status=OpportunityStatus.LOST, lost_at__lte=limit)
    )
    return matured_q(tenant) & ~Q(Exists(closed))


def bucket_q(lowest: int, highest: int | None) -> Q:
    q = Q(lead_to_contract_days__gte=lowest)
    return q & Q(lead_to_contract_days__lte=highest) if highest is not None else q


# -- columns and dimensions -----------------------------------------------------------------


def _column(model, path: str) -> Column:
    first, *rest = path.split("__")
    field = model._meta.get_field(first)
    if first == "origin_lead" and rest:
        field = Lead._meta.get_field(rest[0])
    return Column(path, capfirst(field.verbose_name))


LEAD_COLUMNS = tuple(
    _column(Lead, p)
    for p in (
        "created_at",
        "company",
        "contact_name",
        "channel__name",
        "owner__user__username",
        "verification",
        "verified_at",
        "status",
    )
)
CONTRACT_COLUMNS = (
    _column(Opportunity, "name"),
    _column(Opportunity, "customer__name"),
    Column("origin_lead__created_at", _("Lead created at")),
    Column("origin_lead__channel__name", _("Channel")),
    Column("origin_lead__owner__user__username", _("Lead owner")),
    _column(Opportunity, "cycle_started_at"),
    _column(Opportunity, "won_at"),
    _column(Opportunity, "lead_to_contract_days"),
)
LEAD_DIMENSIONS = (
    Dimension(REGION, "province"),
    Dimension(REP, "owner"),
    Dimension(CHANNEL, "channel", _("channel")),
    Dimension(COHORT, "cohort", _("monthly cohort")),
)
CONTRACT_DIMENSIONS = (
    Dimension(REGION, "origin_lead__province"),
    Dimension(REP, "origin_lead__owner"),
    Dimension(CHANNEL, "origin_lead__channel", _("channel")),
    Dimension(COHORT, "cohort", _("monthly cohort")),
)
LEAD_LINK = RowLink("leads:detail", "public_id")
CONTRACT_LINK = RowLink("opportunities:detail", "public_id")


def _lead_metric(key, label, definition, where) -> Metric:
    return Metric(
        key=key,
        label=label,
        definition=definition,
        rows=cohort_leads,
        where=where,
        aggregate=COUNT,
        columns=LEAD_COLUMNS,
        dimensions=LEAD_DIMENSIONS,
        dated_by="created_at",
        link=LEAD_LINK,
        section=SECTION,
        group=GROUP,
    )


def _contract_metric(key, label, definition, where, **extra) -> Metric:
    return Metric(
        key=key,
        label=label,
        definition=definition,
        rows=cohort_contracts,
        where=where,
        columns=CONTRACT_COLUMNS,
        dimensions=CONTRACT_DIMENSIONS,
        dated_by="origin_lead__created_at",
        link=CONTRACT_LINK,
        section=SECTION,
        group=GROUP,
        **extra,
    )


def register() -> None:
    register_metric(
        _lead_metric(
            LEADS,
            _("Leads in the cohort"),
            _("Every lead created in the range (the cohort), revisits included."),
            None,
        )
    )
    register_metric(
        _lead_metric(
            VALID,
            _("Valid leads"),
            _("Leads of the cohort verified valid, or from which an opportunity was opened."),
            lambda tenant: valid_q(),
        )
    )
    register_metric(
        _lead_metric(
            MATURED,
            _("Valid leads 120 days old"),
            _(
                "Valid leads of the cohort created at least 120 days before the start of "
                "today: those whose 120 days are over."
            ),
            matured_q,
        )
    )
    register_metric(
        _lead_metric(
            OPEN_120,
            _("Still open after 120 days"),
            _(
                "Valid leads 120 days old from which no opportunity was won or lost within "
                "120 days of the lead's creation."
            ),
            open_at_120_q,
        )
    )
    register_rate(
        Rate(
            key=OPEN_SHARE,
            label=_("Open after 120 days"),
            definition=_(
                "Valid leads still open 120 days after their creation, divided by the valid "
                "leads 120 days old."
            ),
            numerator=OPEN_120,
            denominator=MATURED,
            higher_is_better=False,
            section=SECTION,
            group=GROUP,
            advice=_(
                "Move the long tail on: a lead without a next step after 60 days gets a "
                "decision-chain visit or is closed as lost, with its reason."
            ),
        )
    )
    register_metric(
        _contract_metric(
            WON,
            _("Contracts won"),
            _("Opportunities won (signed contract in force) whose origin lead is in the cohort."),
            None,
            aggregate=COUNT,
        )
    )
    register_metric(
        _contract_metric(
            MEDIAN_DAYS,
            _("Median days lead to contract"),
            _(
                "The median of the contracts' lead-to-contract days: from the lead's "
                "verification (or creation) to the signature."
            ),
            Q(lead_to_contract_days__isnull=False),
            aggregate=MEDIAN,
            of="lead_to_contract_days",
            unit="days",
        )
    )
    for name, label, lowest, highest in BUCKETS:
        register_metric(
            _contract_metric(
                bucket_key(name),
                _days(_("Contracts in %(days)s days"), label),
                _days(
                    _("Contracts of the cohort signed %(days)s days after the lead's screening."),
                    label,
                ),
                bucket_q(lowest, highest),
                aggregate=COUNT,
            )
        )


def _days(text, days: str):
    """`text` % days, translated when read (a lazy string, as every label)."""
    return lazy(lambda: str(text) % {"days": days}, str)()
