"""Fetching a rule's task for a member: their own only, 404 for any other (another
member's, another tenant's, a missing one alike)."""

from __future__ import annotations

import uuid

from django.http import Http404

from automation.models import Task
from crm.models import Membership


def access_task(membership: Membership, public_id: uuid.UUID) -> Task:
    task = Task.objects.filter(public_id=public_id, assignee=membership).first()
    if task is None:
        raise Http404("No such task.")
    return task
