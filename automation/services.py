"""Writes of the automation app that people make (the engine's own are in engine.py)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from automation.models import Task
from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant


def task_done(*, tenant: Tenant, acting_member: Membership, task: Task) -> bool:
    """Mark a rule's task done (its assignee; the view checks). Whether it was open."""
    check_tenant(tenant, acting_member, task)
    with transaction.atomic():
        done = Task.objects.filter(pk=task.pk, done_at__isnull=True).update(done_at=timezone.now())
        if done:
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="automation.task_done",
                obj=task,
            )
    return bool(done)
