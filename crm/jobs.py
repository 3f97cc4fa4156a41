"""Queueing a task by its registered name, and the beat jobs' fan-out to tenants.

A service that queues a task defined in a module which imports that service back (a
`tasks.py` calls its services; the services queue its tasks) names the task instead of
importing it, so the modules import each other one way only. The name is the task's
`name=` ("leads.process_inbound_event"), the same the beat schedule uses.

A beat job that runs per tenant queues one task per tenant (`per_active_tenant`, or
`per_tenant` for the tenants a platform query found with work due), in round-robin order
across rounds (`round_robin`).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable

from celery import Task
from django.core.cache import cache

from crm.celery import _cursor_key, app, task_started

__all__ = ["per_active_tenant", "per_tenant", "round_robin", "task_named", "task_started"]

logger = logging.getLogger(__name__)


def task_named(name: str) -> Task:
    """The task registered as `name`, loading the apps' task modules first if needed."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def per_active_tenant(task: Task, *args, expires: int) -> int:
    """A beat job's fan-out: queue `task(tenant_id, *args)` for each active tenant, each
    message expiring after `expires` seconds (one still queued when the next round is due
    is pointless). A platform job that only lists tenants; each task runs inside its own
    tenant (`TenantTask`). Returns how many were queued.

    Round-robin across rounds: the tenants are queued in id order starting after the
    last tenant whose `task` a worker started (a `TenantTask` declared with
    `round_robin=True` records it), so a round that
    did not get through every tenant before its messages expired is continued by the
    next one where it stopped: no tenant is always at the tail."""
    from crm.models import Tenant

    tenant_ids = list(
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    return per_tenant(task, tenant_ids, *args, expires=expires)


def per_tenant(task: Task, tenant_ids: Iterable[int], *args, expires: int) -> int:
    """Queue `task(tenant_id, *args)` for each of `tenant_ids`, in round-robin order
    (`round_robin`). Returns how many were queued."""
    ordered = round_robin(task.name, tenant_ids)
    for tenant_id in ordered:
        task.apply_async((tenant_id, *args), expires=expires)
    return len(ordered)


def round_robin(task_name: str, tenant_ids: Iterable[int]) -> list[int]:
    """`tenant_ids` in id order, rotated to start after the tenant whose `task_name` was
    started last (`crm.celery.task_started`); id order when none was recorded or the
    cache is down."""
    ordered = sorted(set(tenant_ids))
    try:
        last = cache.get(_cursor_key(task_name))
    except Exception:  # the cache down: plain id order, the jobs still run
        logger.warning("fan-out of %s: no round-robin cursor (cache unavailable)", task_name)
        last = None
    if last is None:
        return ordered
    start = bisect.bisect_right(ordered, last)
    return ordered[start:] + ordered[:start]
