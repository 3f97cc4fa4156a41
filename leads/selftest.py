"""The leads app's indicators of the CRM health self-test (crm.selftest, docs/selftest.md)
and the metrics (group "selftest") their numbers come from, registered from
LeadsConfig.ready():

1. leads assigned within 2 h of their creation ≥ 95 %;
4. daily active reps ≥ 90 %;
5. lead contacts written up as a follow-up within 24 h ≥ 90 %;
7. customers with ≥ 3 tags (their leads' tags) ≥ 85 %;
10. training participation > 75 % (the observation zone's training card).

Each indicator counts the 30 local days before today (`crm.selftest.window`), or, for
the customers' tags, the customers as they stand at the end of those days.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Least
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    SUM,
    Column,
    Dimension,
    RowLink,
    period_bounds,
)
from crm.models import Membership, Notification, Role, Tenant
from crm.selftest import (
    Indicator,
    Result,
    elapsed,
    register_indicator,
    register_metric,
    share_result,
    window,
)
from customers.models import Customer, Interaction
from leads.models import (
    AssignmentDecision,
    DecisionOutcome,
    Lead,
    LeadEvent,
    LeadEventKind,
    RepProfile,
    Tag,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# 1. Assignment within 2 h ------------------------------------------------------------------

ASSIGN_HOURS = 2


def assignment_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The leads created on the local days [start, end], with their first assignment: the
    earliest decision that gave the lead to a rep (the engine's or a manager's), else
    `assigned_at` for a lead handed over without one; and the hours from creation to it."""
    since, until = period_bounds(tenant, start, end)
    first_decision = (
        AssignmentDecision.objects.filter(
            tenant=OuterRef("tenant"), lead=OuterRef("pk"), outcome=DecisionOutcome.ASSIGNED
        )
        .order_by("decided_at")
        .values("decided_at")[:1]
    )
    return (
        Lead.objects.filter(tenant=tenant, created_at__gte=since, created_at__lt=until)
        .annotate(first_assigned_at=Least(Subquery(first_decision), F("assigned_at")))
        .annotate(hours_to_assign=elapsed("created_at", "first_assigned_at", HOUR))
    )


ASSIGNED_ON_TIME = Q(hours_to_assign__lte=ASSIGN_HOURS)
ASSIGNED_LATE = Q(first_assigned_at__isnull=True) | Q(hours_to_assign__gt=ASSIGN_HOURS)

LEAD_DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "owner"))
LEAD_LINK = RowLink("leads:detail", "public_id")
ASSIGNMENT_COLUMNS = (
    Column("created_at", _("Created at")),
    Column("company", _("Company")),
    Column("channel__name", _("Channel")),
    Column("owner__user__username", _("Owner")),
    Column("first_assigned_at", _("First assigned at")),
    Column("hours_to_assign", _("Hours to assignment")),
)


def assignment(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.leads_assigned_2h",
        denominator="selftest.leads_created",
        failing="selftest.leads_assigned_late",
    )


# 4. Daily active reps ----------------------------------------------------------------------

DAILY_ACTIVE_SHARE = 0.9


# Correlated subqueries on a rep seat (the outer crm_membership row). The activity: the
# local days on which the rep logged a follow-up or a verification, made an entry on a
# lead's timeline (a contact, a verdict …), closed their day on the board, or made any
# audited change — the rows of leads_repactiveday (RepActiveDay), which triggers keep
# from those four sources (leads migration 0021), read through its unique index
# (tenant, member, day). The rep's start: the day the seat was created, or the first day
# of activity when earlier (history brought in from before the seat). The working days:
# Monday to Friday of [start, end] from the rep's start; the active days: those of them
# with activity.
STARTED = (
    "LEAST((crm_membership.created_at AT TIME ZONE %(tz)s)::date,"
    " (SELECT min(x.day) FROM leads_repactiveday x"
    "   WHERE x.tenant_id = crm_membership.tenant_id AND x.membership_id = crm_membership.id))"
)
WORKING_DAYS = (
    "(SELECT count(*) FROM generate_series(GREATEST(%(start)s::date, %(started)s),"
    " %(end)s::date, interval '1 day') AS d(day)"
    " WHERE extract(isodow FROM d.day) < 6)"
)
ACTIVE_DAYS = (
    "(SELECT count(*) FROM leads_repactiveday x"
    "  WHERE x.tenant_id = crm_membership.tenant_id AND x.membership_id = crm_membership.id"
    "    AND x.day >= %(start)s AND x.day <= %(end)s AND extract(isodow FROM x.day) < 6)"
)


def _days(sql: str, values: dict) -> RawSQL:
    """`sql` (with the rep's start in it) and its named parameters, as RawSQL takes them
    (positional, in order)."""
    sql = sql.replace("%(started)s", STARTED)
    names = re.findall(r"%\((\w+)\)s", sql)
    return RawSQL(  # noqa: S611 — constant SQL, values passed as parameters
        re.sub(r"%\(\w+\)s", "%s", sql),
        [values[name] for name in names],
        output_field=IntegerField(),
    )


def rep_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The tenant's active reps (role rep, seat and user active) with at least one working
    day in [start, end] since they started: `working_days`, `active_days`."""
    values = {"tz": tenant.timezone, "start": start, "end": end}
    return (
        Membership.objects.filter(
            tenant=tenant, role=Role.REP, is_active=True, user__is_active=True
        )
        .annotate(working_days=_days(WORKING_DAYS, values), active_days=_days(ACTIVE_DAYS, values))
        .filter(working_days__gt=0)
    )


REP_BELOW = Q(active_days__lt=F("working_days") * DAILY_ACTIVE_SHARE)
REP_COLUMNS = (
    Column("user__username", _("Rep")),
    Column("created_at", _("Joined")),
    Column("working_days", _("Working days")),
    Column("active_days", _("Days active")),
)
REP_DIMENSIONS = (Dimension(REP, "id"),)


def daily_active(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.rep_active_days",
        denominator="selftest.rep_working_days",
        failing="selftest.reps_below_90",
    )


# 5. Follow-up notes within 24 h ------------------------------------------------------------

NOTE_HOURS = 24


def touch_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The contacts recorded on leads (timeline entries `touch`) on the local days [start,
    end], with the first follow-up or verification logged on the lead from the contact to
    24 hours after it (`noted_at`), and whether it is written up (`noted`): such a
    follow-up, or the lead's verdict given in that time."""
    since, until = period_bounds(tenant, start, end)
    note = (
        Interaction.objects.filter(
            tenant=OuterRef("tenant"),
            lead=OuterRef("lead"),
            at__gte=OuterRef("at"),
            at__lte=OuterRef("at") + timedelta(hours=NOTE_HOURS),
        )
        .order_by("at")
        .values("at")[:1]
    )
    verdict_in_time = Q(
        lead__verified_at__gte=F("at"),
        lead__verified_at__lte=F("at") + timedelta(hours=NOTE_HOURS),
    )
    return (
        LeadEvent.objects.filter(
            tenant=tenant, kind=LeadEventKind.TOUCH, at__gte=since, at__lt=until
        )
        .annotate(noted_at=Subquery(note))
        .annotate(
            noted=Case(
                When(Q(noted_at__isnull=False) | verdict_in_time, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )


TOUCH_COLUMNS = (
    Column("at", _("Contacted at")),
    Column("lead__company", _("Company")),
    Column("lead__owner__user__username", _("Owner")),
    Column("noted_at", _("Follow-up logged at")),
    Column("lead__verified_at", _("Verified at")),
)
TOUCH_DIMENSIONS = (Dimension(REGION, "lead__province"), Dimension(REP, "lead__owner"))
TOUCH_LINK = RowLink("leads:detail", "lead__public_id")


def notes(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.lead_contacts_noted",
        denominator="selftest.lead_contacts",
        failing="selftest.lead_contacts_unnoted",
    )


# 7. Customer tags --------------------------------------------------------------------------

MIN_TAGS = 3


def customer_tag_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The customers created before the end of `end`, with `tag_count`: the distinct tags
    of their leads (the customer's `lead_tag_count`, kept by triggers: leads migration
    0019), so that the counts read the index customer_lead_tags."""
    _since, until = period_bounds(tenant, start, end)
    return Customer.objects.filter(tenant=tenant, created_at__lt=until).annotate(
        tag_count=F("lead_tag_count")
    )


CUSTOMER_COLUMNS = (
    Column("name", _("Customer")),
    Column("owner__user__username", _("Owner")),
    Column("tag_count", _("Tags")),
)
CUSTOMER_DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "owner"))
CUSTOMER_LINK = RowLink("customers:detail", "public_id")


def tags(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    result = share_result(
        tenant,
        start,
        end,
        numerator="selftest.customers_tagged",
        denominator="selftest.customers_for_tags",
        failing="selftest.customers_under_3_tags",
    )
    if result.value is not None and not Tag.objects.filter(tenant=tenant).exists():
        # A tenant that defined no tag does not tag: no data rather than 0 %.
        return replace(result, value=None)
    return result


# 10. Training participation ----------------------------------------------------------------

TRAINING_EVENT = "zone.observation"
TRAINING_SHARE = 0.75


def training_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The training cards reps received on the local days [start, end] (the notification
    of entering the observation zone, to the rep), and whether the rep took it up
    (`taken`): acknowledged it at or after it was sent, or received a later card (which
    they could only get after leaving the zone)."""
    since, until = period_bounds(tenant, start, end)
    acknowledged = RepProfile.objects.filter(
        tenant=OuterRef("tenant"), membership=OuterRef("recipient")
    ).values("training_acknowledged_at")[:1]
    later = Notification.objects.filter(
        tenant=OuterRef("tenant"),
        recipient=OuterRef("recipient"),
        event=TRAINING_EVENT,
        created_at__gt=OuterRef("created_at"),
    )
    return (
        Notification.objects.filter(
            tenant=tenant,
            event=TRAINING_EVENT,
            recipient__role=Role.REP,
            created_at__gte=since,
            created_at__lt=until,
        )
        .annotate(acknowledged_at=Subquery(acknowledged))
        .annotate(
            taken=Case(
                When(Q(acknowledged_at__gte=F("created_at")) | Q(Exists(later)), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )


TRAINING_COLUMNS = (
    Column("created_at", _("Card sent at")),
    Column("recipient__user__username", _("Rep")),
    Column("acknowledged_at", _("Acknowledged at")),
)
TRAINING_DIMENSIONS = (Dimension(REP, "recipient"),)


def training(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.training_taken",
        denominator="selftest.training_cards",
        failing="selftest.training_missed",
    )


# --- Registration ---------------------------------------------------------------------------


def _metric(key, label, definition, rows, **fields) -> None:
    register_metric(key, label, definition, rows, **fields)


def register_metrics() -> None:
    lead_fields = {
        "columns": ASSIGNMENT_COLUMNS,
        "dimensions": LEAD_DIMENSIONS,
        "dated_by": "created_at",
        "link": LEAD_LINK,
        "aggregate": COUNT,
    }
    _metric(
        "leads_created",
        _("Leads created"),
        _("Every lead created in the range, revisits included."),
        assignment_rows,
        **lead_fields,
    )
    _metric(
        "leads_assigned_2h",
        _("Leads assigned within 2 h"),
        _("Leads created in the range whose first assignment came at most 2 hours after."),
        assignment_rows,
        where=ASSIGNED_ON_TIME,
        **lead_fields,
    )
    _metric(
        "leads_assigned_late",
        _("Leads not assigned within 2 h"),
        _(
            "Leads created in the range assigned more than 2 hours after their creation, "
            "or never assigned."
        ),
        assignment_rows,
        where=ASSIGNED_LATE,
        **lead_fields,
    )

    rep_fields = {"columns": REP_COLUMNS, "dimensions": REP_DIMENSIONS}
    _metric(
        "rep_working_days",
        _("Reps' working days"),
        _(
            "Monday to Friday in the range, for each active rep from their start (the seat "
            "created, or their first recorded activity when earlier), added up."
        ),
        rep_rows,
        aggregate=SUM,
        of="working_days",
        unit="days",
        **rep_fields,
    )
    _metric(
        "rep_active_days",
        _("Reps' active days"),
        _(
            "Working days in the range on which each active rep logged a follow-up, made an "
            "entry on a lead's timeline, closed the day or made an audited change, added up."
        ),
        rep_rows,
        aggregate=SUM,
        of="active_days",
        unit="days",
        **rep_fields,
    )
    _metric(
        "reps_below_90",
        _("Reps active on less than 90 percent of their working days"),
        _("Active reps who acted on fewer than 90 percent of their working days in the range."),
        rep_rows,
        where=REP_BELOW,
        aggregate=COUNT,
        **rep_fields,
    )

    touch_fields = {
        "columns": TOUCH_COLUMNS,
        "dimensions": TOUCH_DIMENSIONS,
        "dated_by": "at",
        "link": TOUCH_LINK,
        "aggregate": COUNT,
    }
    _metric(
        "lead_contacts",
        _("Lead contacts"),
        _("Contacts with a lead's person recorded in the range (calls, messages, visits)."),
        touch_rows,
        **touch_fields,
    )
    _metric(
        "lead_contacts_noted",
        _("Lead contacts written up within 24 h"),
        _(
            "Contacts in the range followed within 24 hours by a follow-up logged on the lead "
            "(talk tags, pains, next action) or by its verdict."
        ),
        touch_rows,
        where=Q(noted=True),
        **touch_fields,
    )
    _metric(
        "lead_contacts_unnoted",
        _("Lead contacts not written up within 24 h"),
        _("Contacts in the range with no follow-up logged nor verdict within 24 hours."),
        touch_rows,
        where=Q(noted=False),
        **touch_fields,
    )

    customer_fields = {
        "columns": CUSTOMER_COLUMNS,
        "dimensions": CUSTOMER_DIMENSIONS,
        "link": CUSTOMER_LINK,
        "aggregate": COUNT,
    }
    _metric(
        "customers_for_tags",
        _("Customers"),
        _("Every customer created before the end of the range."),
        customer_tag_rows,
        **customer_fields,
    )
    _metric(
        "customers_tagged",
        _("Customers with 3 tags or more"),
        _("Customers whose leads carry at least 3 different tags between them."),
        customer_tag_rows,
        where=Q(tag_count__gte=MIN_TAGS),
        **customer_fields,
    )
    _metric(
        "customers_under_3_tags",
        _("Customers with fewer than 3 tags"),
        _("Customers whose leads carry fewer than 3 different tags between them."),
        customer_tag_rows,
        where=Q(tag_count__lt=MIN_TAGS),
        **customer_fields,
    )

    training_fields = {
        "columns": TRAINING_COLUMNS,
        "dimensions": TRAINING_DIMENSIONS,
        "dated_by": "created_at",
        "aggregate": COUNT,
    }
    _metric(
        "training_cards",
        _("Training cards sent"),
        _(
            "Training cards reps received in the range: on entering the observation zone "
            "after late first touches in a row."
        ),
        training_rows,
        **training_fields,
    )
    _metric(
        "training_taken",
        _("Training cards acknowledged"),
        _(
            "Training cards of the range the rep acknowledged (or that a later card followed, "
            "once the rep had left the zone)."
        ),
        training_rows,
        where=Q(taken=True),
        **training_fields,
    )
    _metric(
        "training_missed",
        _("Training cards not acknowledged"),
        _("Training cards of the range still waiting for the rep's acknowledgement."),
        training_rows,
        where=Q(taken=False),
        **training_fields,
    )


def register() -> None:
    register_metrics()
    register_indicator(
        Indicator(
            key="assignment",
            position=1,
            label=_("Leads assigned within 2 h"),
            target=_("≥ 95 %"),
            threshold=0.95,
            higher_is_better=True,
            inclusive=True,
            compute=assignment,
            definition=_(
                "Of the leads created in the last 30 days, the share first assigned to a rep "
                "at most 2 hours after they were created."
            ),
            advice=_(
                "Find out why the listed leads waited (nobody eligible, reps away or paused), "
                "widen the reps' profiles or drop optional criteria sooner, and prefer weighted "
                "matching to round robin. Three days after a change, compare first-touch times "
                "and 72-hour conversion."
            ),
            no_data=_("No lead was created in the last 30 days."),
        )
    )
    register_indicator(
        Indicator(
            key="daily_active",
            position=4,
            label=_("Daily active reps"),
            target=_("≥ 90 %"),
            threshold=DAILY_ACTIVE_SHARE,
            higher_is_better=True,
            inclusive=True,
            compute=daily_active,
            definition=_(
                "Over the working days (Monday to Friday) of the last 30 days since each "
                "active rep started, the share on which the rep logged a follow-up, made an "
                "entry on a lead's timeline, closed the day or made an audited change."
            ),
            advice=_(
                "Ask the listed reps to work from the CRM: log every contact as it happens and "
                "close the day on the board each evening; replace the spoken morning report "
                "with the board and the customer briefing."
            ),
            no_data=_("The tenant has no active rep who had started before the last working day."),
        )
    )
    register_indicator(
        Indicator(
            key="notes",
            position=5,
            label=_("Follow-up notes within 24 h"),
            target=_("≥ 90 %"),
            threshold=0.9,
            higher_is_better=True,
            inclusive=True,
            compute=notes,
            definition=_(
                "Of the contacts recorded on leads in the last 30 days, the share followed "
                "within 24 hours by a structured follow-up on the lead (talk tags, pains, next "
                "action) or by its verdict."
            ),
            advice=_(
                "Have every call or meeting written up as a follow-up within the day (talk tags, "
                "pains, the next action), and go through the listed contacts with their owners."
            ),
            no_data=_("No contact with a lead was recorded in the last 30 days."),
        )
    )
    register_indicator(
        Indicator(
            key="tags",
            position=7,
            label=_("Customers with 3 tags or more"),
            target=_("≥ 85 %"),
            threshold=0.85,
            higher_is_better=True,
            inclusive=True,
            compute=tags,
            definition=_(
                "Of the customers, the share whose leads carry at least 3 different tags "
                "between them."
            ),
            advice=_(
                "Add tagging rules for the keywords your leads carry (industry, product line, "
                "urgency) so that every lead is tagged on arrival, and tag the listed customers' "
                "leads by hand."
            ),
            no_data=_("The tenant has no customer, or has defined no tag."),
        )
    )
    register_indicator(
        Indicator(
            key="training",
            position=10,
            label=_("Training participation"),
            target=_("> 75 %"),
            threshold=TRAINING_SHARE,
            higher_is_better=True,
            inclusive=False,
            compute=training,
            definition=_(
                "Of the training cards reps received in the last 30 days (the card generated "
                "from their late first touches, on entering the observation zone), the share "
                "they acknowledged."
            ),
            advice=_(
                "Ask the listed reps to read and acknowledge the training card on their home "
                "page: their dispatch resumes, on probation, once they do."
            ),
            no_data=_(
                "No training card was sent in the last 30 days. The only training this product "
                "generates from CRM data is the card a rep receives on entering the observation "
                "zone; it keeps no courses or attendance besides."
            ),
        )
    )
