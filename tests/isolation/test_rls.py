"""Fence 2: PostgreSQL row-level security, checked as the app role the product uses."""

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.utils import DatabaseError

from crm.rls import POLICY, tenant_owned_models
from crm.tenancy import tenant_context

pytestmark = pytest.mark.django_db


def _tenant_ids(table: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tenant_id FROM {connection.ops.quote_name(table)}")
        return {row[0] for row in cursor.fetchall()}


def test_raw_sql_as_the_app_role_sees_only_the_current_tenant(world):
    with tenant_context(world.a.tenant):
        assert _tenant_ids("crm_auditevent") == {world.a.tenant.pk}
    with tenant_context(world.b.tenant):
        assert _tenant_ids("crm_auditevent") == {world.b.tenant.pk}


def test_raw_sql_without_a_tenant_sees_nothing(world):
    with transaction.atomic():
        assert _tenant_ids("crm_auditevent") == set()


def test_it_refuses_to_write_a_row_into_another_tenant(world):
    with (
        tenant_context(world.a.tenant),
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO crm_auditevent (tenant_id, public_id, action, object_type,"
            " object_id, object_repr, changes, at)"
            " VALUES (%s, gen_random_uuid(), 'x', 'x', 'x', '', '{}', now())",
            [world.b.tenant.pk],
        )


def test_it_cannot_update_another_tenants_rows(world):
    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        cursor.execute("UPDATE crm_auditevent SET action = 'hijacked'")
        assert cursor.rowcount == 1  # only tenant A's own row
    with tenant_context(world.b.tenant):
        world.b.audit_event.refresh_from_db()
    assert world.b.audit_event.action == "test.seed"


def test_every_tenant_owned_table_has_forced_rls_and_the_policy():
    tables = [m._meta.db_table for m in tenant_owned_models()]
    assert tables, "no TenantOwned model found"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)"
            " FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            [POLICY, tables],
        )
        rows = {r[0]: r[1:] for r in cursor.fetchall()}
    assert set(rows) == set(tables)
    for table, flags in rows.items():
        assert flags == (True, True, True), f"{table}: RLS enabled/forced/policy = {flags}"


def test_every_tenant_owned_model_is_unique_per_tenant_on_its_public_id():
    for model in tenant_owned_models():
        fields = [tuple(c.fields) for c in model._meta.constraints if hasattr(c, "fields")]
        assert ("tenant", "public_id") in fields, model


def test_the_app_role_is_neither_superuser_nor_bypassrls_nor_owner():
    tables = [m._meta.db_table for m in tenant_owned_models()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relname = ANY(%s)"
            " AND pg_get_userbyid(relowner) = current_user",
            [tables],
        )
        assert cursor.fetchone()[0] == 0


def test_the_app_role_cannot_disable_rls(world):
    with (
        pytest.raises((ProgrammingError, IntegrityError, DatabaseError)),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("ALTER TABLE crm_auditevent DISABLE ROW LEVEL SECURITY")


@pytest.mark.django_db(transaction=True)
def test_the_tenant_setting_dies_with_the_transaction(world):
    # A reused connection must not carry tenant A into the next request.
    with tenant_context(world.a.tenant):
        assert _tenant_ids("crm_auditevent") == {world.a.tenant.pk}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true)")
        assert cursor.fetchone()[0] in ("", None)
    with transaction.atomic():
        assert _tenant_ids("crm_auditevent") == set()
