"""The daily board's "Tasks from rules" section (crm.board): the member's open tasks."""

from __future__ import annotations

from datetime import date

from automation.models import Task
from crm.models import Membership

BOARD_LIMIT = 10


def open_tasks(membership: Membership, today: date) -> list[Task]:
    """The board's items: the member's open tasks, oldest first (the index task_open)."""
    return list(
        Task.objects.filter(assignee=membership, done_at__isnull=True).order_by("created_at", "id")[
            :BOARD_LIMIT
        ]
    )
