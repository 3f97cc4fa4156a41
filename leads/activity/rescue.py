"""The activity index where the reps work: the board's "Leads to rescue" section
(crm.board) and the score on the lead's page.

The section lists the member's open leads that scored below RESCUE_BELOW on the latest
computed day (today's run, or yesterday's until today's is done), the lowest score first
(the most at risk: to be revived or closed), then the most recently updated; one item per
person (a contact of a customer with several leads below the line is one item, saying how
many more), at most BOARD_LIMIT, with the link to all of them (the metric's rows). Each item
says which component is missing and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Subquery, Window
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm import normalize
from crm.models import Membership
from leads.activity.compute import (
    COVERAGE_POINTS,
    DENSITY_POINTS,
    FOLLOW_UPS_WANTED,
    FRESH_DAYS,
    FRESHNESS_POINTS,
    RESCUE_BELOW,
    ROLES_WANTED,
)
from leads.models import ActivityRun, LeadActivity, LeadStatus

BOARD_LIMIT = 10
# Rows read for the section: enough for BOARD_LIMIT people when some have several leads.
READ_LIMIT = BOARD_LIMIT * 5
# The metric whose rows are the whole list (leads.activity.metrics).
BELOW_METRIC = "leads.activity_below"


@dataclass
class Suggestion:
    component: str  # "freshness", "density", "coverage"
    missing: Decimal  # the points it lacks
    text: str


@dataclass
class RescueItem:
    row: LeadActivity  # with its lead
    suggestions: list[Suggestion]
    total: int  # the member's leads below the line that day, all of them
    all_url: str  # their list (the metric's rows)
    # The same person's other leads below the line (same customer and contact), which
    # one item stands for: working the person revives them all.
    others: list[LeadActivity] = field(default_factory=list)

    @property
    def lead(self):
        return self.row.lead


def suggestions(row: LeadActivity) -> list[Suggestion]:
    """What each incomplete component of the row lacks, and the concrete next action."""
    found = []
    if row.freshness < FRESHNESS_POINTS:
        found.append(
            Suggestion(
                "freshness",
                FRESHNESS_POINTS - row.freshness,
                ngettext(
                    "%(days)s day without an update: contact them today",
                    "%(days)s days without an update: contact them today",
                    row.idle_days,
                )
                % {"days": row.idle_days},
            )
        )
    if row.follow_ups < FOLLOW_UPS_WANTED:
        found.append(
            Suggestion(
                "density",
                DENSITY_POINTS - row.density,
                _("Fewer than 3 follow-ups in 30 days (%(count)s): log the next one")
                % {"count": row.follow_ups},
            )
        )
    if row.roles < ROLES_WANTED:
        text = (
            _("Only 1 decision-chain role reached: find the purchasing or technical lead")
            if row.roles == 1
            else _("No decision-chain role reached yet: find the purchasing or technical lead")
        )
        found.append(Suggestion("coverage", COVERAGE_POINTS - row.coverage, text))
    return found


def latest_day(membership: Membership, today: date):
    """The latest computed day, today or yesterday (a subquery)."""
    return Subquery(
        ActivityRun.objects.filter(
            tenant_id=membership.tenant_id, day__lte=today, day__gte=today - timedelta(days=1)
        )
        .order_by("-day")
        .values("day")[:1]
    )


def rescue_rows(membership: Membership, today: date):
    """The member's open leads below the line on the latest day, in the board's order,
    each with `total` (how many there are in all)."""
    return (
        LeadActivity.objects.filter(
            owner=membership,
            day=latest_day(membership, today),
            score__lt=RESCUE_BELOW,
            lead__owner=membership,
            lead__status__in=[LeadStatus.ASSIGNED, LeadStatus.VALID],
        )
        .select_related("lead")
        .annotate(total=Window(Count("pk")))
        .order_by("score", "idle_days", "lead_id")
    )


def person_key(lead) -> tuple:
    """Who a lead is from: its customer and contact (by the contact's name key, kept by
    intake or made from the name for a lead entered otherwise, else the phone's), or the
    lead alone when it has neither."""
    who = lead.contact_key or normalize.person_key(lead.contact_name or "") or lead.phone_key
    if lead.customer_id and who:
        return ("person", lead.customer_id, who)
    return ("lead", lead.pk)


def rescue_items(membership: Membership, today: date) -> list[RescueItem]:
    """The board's items (crm.board's `items` provider): one query. One item per person
    (`person_key`: the lowest-scored of their leads, the others in `others`), at most
    BOARD_LIMIT; each carries how many leads there are in all (`total`) and the link to
    all of them (`all_url`)."""
    from crm.metrics import REP, drill_url

    rows = list(rescue_rows(membership, today)[:READ_LIMIT])
    if not rows:
        return []
    day = rows[0].day
    all_url = drill_url(BELOW_METRIC, day, day, {REP: membership.pk})
    items: dict[tuple, RescueItem] = {}
    for row in rows:
        key = person_key(row.lead)
        if key in items:
            items[key].others.append(row)
        elif len(items) < BOARD_LIMIT:
            items[key] = RescueItem(row, suggestions(row), rows[0].total, all_url)
    return list(items.values())


def latest_for(lead) -> LeadActivity | None:
    """The lead's score of the latest run (its page's badge), or None when that run did not
    score it (not open then, or no run yet). One query."""
    latest = ActivityRun.objects.order_by("-day").values("day")[:1]
    return LeadActivity.objects.filter(lead=lead, day=Subquery(latest)).first()


def explained(row: LeadActivity) -> list[tuple[str, Decimal, int, str]]:
    """The badge's parts: (name, points, out of, what they come from)."""
    return [
        (
            _("freshness"),
            row.freshness,
            FRESHNESS_POINTS,
            ngettext(
                "updated %(days)s day before the day began",
                "updated %(days)s days before the day began",
                row.idle_days,
            )
            % {"days": row.idle_days}
            + " "
            + _("(fresh within %(limit)s days)") % {"limit": FRESH_DAYS},
        ),
        (
            _("action density"),
            row.density,
            DENSITY_POINTS,
            _("%(count)s follow-ups in 30 days (3 wanted)") % {"count": row.follow_ups},
        ),
        (
            _("role coverage"),
            row.coverage,
            COVERAGE_POINTS,
            _("%(count)s decision-chain roles reached (2 wanted)") % {"count": row.roles},
        ),
    ]
