"""The flows that cross Celery, on a real worker (in-process thread) and the real broker."""

import pytest

from crm.audit import audit
from crm.celery import TenantTask, app
from crm.models import AuditEvent, Heartbeat
from crm.tasks import heartbeat
from crm.tenancy import current_tenant, tenant_context
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@app.task(base=TenantTask, name="tests.audit_from_worker")
def audit_from_worker(tenant_id, note):
    audit(
        tenant=current_tenant(),
        actor=None,
        action="worker.note",
        object_type="test",
        object_id=note,
    )


def test_the_heartbeat_runs_on_a_worker(celery_worker_thread):
    heartbeat.delay()
    assert wait_for(lambda: Heartbeat.objects.filter(name="beat").exists())


def test_a_tenant_task_writes_inside_its_own_tenant(celery_worker_thread, world):
    audit_from_worker.delay(world.b.tenant.pk, "from-the-worker")

    def written():
        with tenant_context(world.b.tenant):
            return AuditEvent.objects.filter(object_id="from-the-worker").exists()

    assert wait_for(written)
    with tenant_context(world.a.tenant):
        assert not AuditEvent.objects.filter(object_id="from-the-worker").exists()
