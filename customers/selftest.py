"""The customers app's indicators of the CRM health self-test (crm.selftest,
docs/selftest.md) and the metrics (group "selftest") their numbers come from, registered
from CustomersConfig.ready():

3. customer profiles refreshed within 90 days > 80 %;
8. next actions done by their due day ≥ 85 %.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    F,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Greatest, TruncDate
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    Column,
    Dimension,
    RowLink,
    period_bounds,
)
from crm.models import Tenant
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

# 3. Profile freshness ----------------------------------------------------------------------

FRESH_DAYS = 90


# The last refresh of a profile: the expression of the index customer_profile_refreshed.
REFRESHED = Greatest("created_at", "last_contact_at", "profile_touched_at")
# Refreshed at most 90 days before the end of the range (days_since_refresh <= 90), as a
# range on the index.
FRESH = Q(refreshed_at__gte=F("fresh_from"))
STALE = Q(refreshed_at__lt=F("fresh_from"))


def profile_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The customers created before the end of `end`, with the last time their profile was
    written or confirmed (`refreshed_at`): created, a follow-up logged on them (which
    records the talk, the pains and the decision-chain roles reached), a contact added, or
    a change to the record (an audit event on it: updated from a lead, edited by an admin);
    the days from then to the end of `end` (`days_since_refresh`); and `fresh_from`, the
    time 90 days before the end of `end` (a profile refreshed from then on is fresh).

    The latest contact and audit event are the customer's `profile_touched_at` (kept by
    triggers, customers migration 0008), so that the freshness is a range on the index
    customer_profile_refreshed rather than two subqueries per customer."""
    _since, until = period_bounds(tenant, start, end)
    return (
        Customer.objects.filter(tenant=tenant, created_at__lt=until)
        .annotate(refreshed_at=REFRESHED)
        .annotate(days_since_refresh=elapsed("refreshed_at", until, timedelta(days=1)))
        .annotate(
            fresh_from=Value(
                until.astimezone(UTC) - timedelta(days=FRESH_DAYS), output_field=DateTimeField()
            )
        )
    )


CUSTOMER_COLUMNS = (
    Column("name", _("Customer")),
    Column("owner__user__username", _("Owner")),
    Column("created_at", _("Created at")),
    Column("last_contact_at", _("Last contact")),
    Column("refreshed_at", _("Profile last refreshed")),
    Column("days_since_refresh", _("Days since")),
)
CUSTOMER_DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "owner"))
CUSTOMER_LINK = RowLink("customers:detail", "public_id")


def freshness(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.profiles_fresh",
        denominator="selftest.profiles",
        failing="selftest.profiles_stale",
    )


# 8. Task completion ------------------------------------------------------------------------

TASK_SHARE = 0.85


def action_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The next actions (a follow-up's or a verification's "before DATE do ACTION", the
    board's tasks) due on the local days [start, end], with the local day they were done
    (`done_on`) and whether that was by their due day (`done_in_time`)."""
    return (
        Interaction.objects.filter(
            tenant=tenant, next_action_due__gte=start, next_action_due__lte=end
        )
        .annotate(done_on=TruncDate("next_done_at", tzinfo=tenant.tzinfo))
        .annotate(
            done_in_time=Case(
                When(done_on__lte=F("next_action_due"), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )


ACTION_COLUMNS = (
    Column("next_action_due", _("Due")),
    Column("next_action__name", _("Next action")),
    Column("by__user__username", _("Owner")),
    Column("customer__name", _("Customer")),
    Column("at", _("Set at")),
    Column("done_on", _("Done on")),
)
ACTION_DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "by"))


def tasks(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.actions_done",
        denominator="selftest.actions_due",
        failing="selftest.actions_missed",
    )


# --- Registration ---------------------------------------------------------------------------


def _metric(key, label, definition, rows, **fields) -> None:
    register_metric(key, label, definition, rows, aggregate=COUNT, **fields)


def register() -> None:
    profile = {"columns": CUSTOMER_COLUMNS, "dimensions": CUSTOMER_DIMENSIONS}
    profile["link"] = CUSTOMER_LINK
    _metric(
        "profiles",
        _("Customer profiles"),
        _("Every customer created before the end of the range."),
        profile_rows,
        **profile,
    )
    _metric(
        "profiles_fresh",
        _("Profiles refreshed within 90 days"),
        _(
            "Customers created, followed up, given a new contact or changed in the 90 days "
            "before the end of the range."
        ),
        profile_rows,
        where=FRESH,
        **profile,
    )
    _metric(
        "profiles_stale",
        _("Profiles not refreshed for 90 days"),
        _(
            "Customers neither created, followed up, given a new contact nor changed in the "
            "90 days before the end of the range."
        ),
        profile_rows,
        where=STALE,
        **profile,
    )
    actions = {"columns": ACTION_COLUMNS, "dimensions": ACTION_DIMENSIONS}
    actions["dated_by"] = "next_action_due"
    _metric(
        "actions_due",
        _("Next actions due"),
        _("Next actions (follow-ups' and verifications') due in the range."),
        action_rows,
        **actions,
    )
    _metric(
        "actions_done",
        _("Next actions done by their due day"),
        _("Next actions due in the range done on or before their due day."),
        action_rows,
        where=Q(done_in_time=True),
        **actions,
    )
    _metric(
        "actions_missed",
        _("Next actions not done by their due day"),
        _("Next actions due in the range done late, or not done."),
        action_rows,
        where=Q(done_in_time=False),
        **actions,
    )

    register_indicator(
        Indicator(
            key="freshness",
            position=3,
            label=_("Customer profiles refreshed"),
            target=_("> 80 %"),
            threshold=0.8,
            higher_is_better=True,
            inclusive=False,
            compute=freshness,
            definition=_(
                "Of the customers, the share whose profile was written or confirmed in the "
                "last 90 days: created, followed up, given a new contact, or changed."
            ),
            advice=_(
                "Start a quarterly profile refresh: each month, send the owners of the customers "
                "without contact for 90 days three steps (check public information, review past "
                "contacts, send a short questionnaire), beginning with the listed ones."
            ),
            no_data=_("The tenant has no customer."),
        )
    )
    register_indicator(
        Indicator(
            key="tasks",
            position=8,
            label=_("Task completion"),
            target=_("≥ 85 %"),
            threshold=TASK_SHARE,
            higher_is_better=True,
            inclusive=True,
            compute=tasks,
            definition=_(
                "Of the next actions (the board's tasks, set by follow-ups and verifications) "
                "due in the last 30 days, the share done on or before their due day."
            ),
            advice=_(
                "Work the board's overdue items first every morning, set next actions the rep "
                "can really do by their date, and go through the listed owners' missed actions "
                "in the weekly review."
            ),
            no_data=_("No next action was due in the last 30 days."),
        )
    )
