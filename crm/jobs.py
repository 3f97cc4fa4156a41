"""Queueing a task by its registered name.

A service that queues a task defined in a module which imports that service back (a
`tasks.py` calls its services; the services queue its tasks) names the task instead of
importing it, so the modules import each other one way only. The name is the task's
`name=` ("leads.process_inbound_event"), the same the beat schedule uses.
"""

from __future__ import annotations

from celery import Task

from crm.celery import app


def task_named(name: str) -> Task:
    """The task registered as `name`, loading the apps' task modules first if needed."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def per_active_tenant(task: Task, *args, expires: int) -> int:
    """A beat job's fan-out: queue `task(tenant_id, *args)` for each active tenant, in id
    order, each message expiring after `expires` seconds (one still queued when the next
    round is due is pointless). A platform job that only lists tenants; each task runs
    inside its own tenant (`TenantTask`). Returns how many were queued."""
    from crm.models import Tenant

    tenant_ids = list(
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    for tenant_id in tenant_ids:
        task.apply_async((tenant_id, *args), expires=expires)
    return len(tenant_ids)
