"""The flows that cross Celery, on a real worker (in-process thread) and the real broker."""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from crm.audit import audit
from crm.celery import TenantTask, app
from crm.models import AuditEvent, Heartbeat
from crm.tasks import heartbeat
from crm.tenancy import current_tenant, tenant_context

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


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def worker():
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def test_the_heartbeat_runs_on_a_worker(worker):
    heartbeat.delay()
    assert _wait_for(lambda: Heartbeat.objects.filter(name="beat").exists())


def test_a_tenant_task_writes_inside_its_own_tenant(worker, world):
    audit_from_worker.delay(world.b.tenant.pk, "from-the-worker")

    def written():
        with tenant_context(world.b.tenant):
            return AuditEvent.objects.filter(object_id="from-the-worker").exists()

    assert _wait_for(written)
    with tenant_context(world.a.tenant):
        assert not AuditEvent.objects.filter(object_id="from-the-worker").exists()
