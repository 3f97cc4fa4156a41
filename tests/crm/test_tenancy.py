import pytest
from django.db import connection

from crm.celery import TenantTask, app
from crm.models import AuditEvent
from crm.tenancy import NoTenantError, all_tenants_context, current_tenant, tenant_context
from tests.conftest import platform_db


@app.task(base=TenantTask, name="tests.count_audit_events")
def count_audit_events(tenant_id):
    return [current_tenant().pk, AuditEvent.objects.count()]


def test_it_refuses_to_query_without_a_tenant(world):
    with pytest.raises(NoTenantError):
        list(AuditEvent.objects.all())


def test_it_scopes_the_default_manager_to_the_current_tenant(world):
    with tenant_context(world.a.tenant):
        assert list(AuditEvent.objects.all()) == [world.a.audit_event]
        assert not AuditEvent.objects.filter(pk=world.b.audit_event.pk).exists()


def test_it_restores_the_outer_tenant_after_a_nested_scope(world):
    with tenant_context(world.a.tenant):
        with tenant_context(world.b.tenant):
            assert list(AuditEvent.objects.all()) == [world.b.audit_event]
        assert current_tenant() == world.a.tenant
        assert list(AuditEvent.objects.all()) == [world.a.audit_event]
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.tenant_id', true)")
            assert cursor.fetchone()[0] == str(world.a.tenant.pk)


@platform_db
def test_it_sees_every_tenant_in_all_tenants_mode(world):
    with all_tenants_context():
        assert AuditEvent.objects.count() == 2
        assert current_tenant() is None


def test_it_rejects_an_unsaved_tenant():
    from crm.models import Tenant

    with pytest.raises(NoTenantError):
        tenant_context(Tenant(slug="x"))


def test_tenant_task_runs_inside_its_tenant(world):
    assert count_audit_events(world.b.tenant.pk) == [world.b.tenant.pk, 1]
    # and through Celery's own call path (eager apply), with only the id crossing over
    result = count_audit_events.apply(args=[world.a.tenant.pk]).get()
    assert result == [world.a.tenant.pk, 1]


def test_tenant_task_skips_an_inactive_tenant(world):
    world.b.tenant.is_active = False
    world.b.tenant.save()
    assert count_audit_events(world.b.tenant.pk) is None
