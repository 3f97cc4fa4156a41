"""The daily board's "Stalled opportunities" section (crm.board): the member's open
opportunities with no activity for longer than their stage's `days_to_stall`, the
longest-quiet first, each with what is missing to move to the next stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.utils import timezone

from crm.models import Membership
from opportunities import requirements
from opportunities.models import Opportunity, OpportunityStatus

# At most this many on a board: the rest are on the kanban, marked stalled.
BOARD_LIMIT = 10


@dataclass
class StalledItem:
    opportunity: Opportunity
    quiet_days: int
    next_stage: object  # a Stage, or None in the last stage
    missing: list  # requirements.Check

    @property
    def missing_shown(self) -> list:
        return self.missing[:3]

    @property
    def missing_more(self) -> int:
        return max(0, len(self.missing) - 3)


def stalled(membership: Membership, now: datetime | None = None):
    """The member's open opportunities quiet for longer than their stage allows."""
    now = now or timezone.now()
    stall = ExpressionWrapper(F("stage__days_to_stall") * timedelta(days=1), DurationField())
    return (
        Opportunity.objects.filter(owner=membership, status=OpportunityStatus.OPEN)
        .annotate(stall=stall)
        .filter(last_activity_at__lt=Value(now, output_field=DateTimeField()) - F("stall"))
        .select_related("stage", "customer")
        .order_by("last_activity_at", "id")
    )


def stalled_items(membership: Membership, today: date) -> list[StalledItem]:
    """The board's items (crm.board's `items` provider)."""
    now = timezone.now()
    rows = list(stalled(membership, now)[:BOARD_LIMIT])
    if not rows:
        return []
    missing = requirements.missing_to_advance(rows)
    return [
        StalledItem(
            opportunity=o,
            quiet_days=(now - o.last_activity_at).days,
            next_stage=missing[o.pk][0],
            missing=missing[o.pk][1],
        )
        for o in rows
    ]
