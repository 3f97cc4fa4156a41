"""The daily board's "At-risk customers" section (crm.board): the member's customers on
the risk list whose retention task (given by the tenant's rule, health.risk) is not
done, newest stay first, each with today's score, its weakest dimension and the
playbook step, and a "done" button (htmx, health.views_risk.risk_done).

A task stays on the board until it is marked done or its customer leaves the list (a
follow-up logged on the customer does not take it off: the score and the quiet days
decide whether the customer is still at risk, at the next recompute). A customer that
comes back onto the list brings a new task."""

from __future__ import annotations

from datetime import date

from crm.models import Membership
from health import risk
from health.models import Dimension, RiskEntry

# At most this many on a board: the rest are on the risk list.
BOARD_LIMIT = 10
_DIMENSIONS = dict(Dimension.choices)


def open_tasks(membership: Membership):
    """The member's open stays with a task given and not done (the index
    risk_entry_open_task)."""
    return RiskEntry.objects.filter(
        owner=membership, left_on__isnull=True, done_at__isnull=True, task_at__isnull=False
    ).select_related("customer")


def at_risk_items(membership: Membership, today: date) -> list[RiskEntry]:
    """The board's items (crm.board's `items` provider): one query."""
    tasks = risk.with_today(open_tasks(membership), risk.LATEST, tenant=membership.tenant)
    entries = list(tasks.order_by("-entered_on", "-id")[:BOARD_LIMIT])
    for entry in entries:
        entry.weakest_label = _DIMENSIONS.get(entry.weakest, "")
        entry.coverage_label = risk.coverage_text(entry)
        entry.quiet_days = risk.days_since(entry)
    return entries
