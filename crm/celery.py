"""The Celery app, and the base class that runs a task inside its tenant."""

import logging
import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """With connections reused across tasks (CELERY_DB_REUSE_MAX), apply Django's own
    per-request rules: drop a connection past CONN_MAX_AGE or one that went bad.
    Not for eager calls: they run inside the caller's transaction and connection."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


def _cursor_key(task_name: str) -> str:
    return f"crm:jobs:last-started:{task_name}"


def task_started(task_name: str, tenant_id: int) -> None:
    """Record that a worker started `task_name` for `tenant_id`: the next fan-out of the
    task starts after this tenant (crm.jobs.round_robin)."""
    from django.core.cache import cache

    try:
        cache.set(_cursor_key(task_name), tenant_id, timeout=None)
    except Exception:  # the cache down: the next round starts at the first tenant
        logger.warning("fan-out of %s: cursor not recorded (cache unavailable)", task_name)


class TenantTask(Task):
    """Base for every tenant task: the first argument is `tenant_id`.

    The body runs inside `tenant_context(tenant)`, one transaction with the RLS setting, so
    the task sees only that tenant's rows. Tasks take ids and re-fetch: never pass model
    instances. A tenant deleted or deactivated meanwhile ends the task quietly.
    """

    abstract = True
    # A task beat fans out to every tenant (crm.jobs.per_active_tenant / per_tenant): set
    # with @app.task(..., round_robin=True), its runs record where the next round starts.
    round_robin = False

    def __call__(self, tenant_id, *args, **kwargs):
        from crm.models import Tenant
        from crm.tenancy import tenant_context

        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:
            logger.warning("task %s skipped: tenant %s is gone or inactive", self.name, tenant_id)
            return None
        if self.round_robin:
            # The next fan-out of this task starts after this tenant (crm.jobs.round_robin).
            task_started(self.name, tenant_id)
        with tenant_context(tenant):
            return self.run(tenant_id, *args, **kwargs)
