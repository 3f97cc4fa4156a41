"""Fence 2: PostgreSQL row-level security, checked as the app role the product uses."""

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, ProgrammingError, connection, connections, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from crm.models import Membership, Role, memberships_of
from crm.rls import POLICY, tenant_link_models, tenant_owned_models
from crm.tenancy import PLATFORM_CALLERS, tenant_context
from tests.conftest import platform_db
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead, make_tag

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


# --- Every tenant-related table, link tables included -----------------------------------------


def _policed(cursor, tables=None):
    """{table: (rls enabled, forced, has the policy)} of the tables with a tenant_id column."""
    cursor.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
        " EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_attribute a"
        " WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)",
        [POLICY],
    )
    return {r[0]: r[1:] for r in cursor.fetchall()}


def test_every_table_with_a_tenant_column_has_forced_rls_and_the_policy():
    with connection.cursor() as cursor:
        rows = _policed(cursor)
    assert "crm_membership" in rows and "leads_lead_tags" in rows
    for table, flags in rows.items():
        assert flags == (True, True, True), f"{table}: RLS enabled/forced/policy = {flags}"


def test_every_link_table_of_tenant_rows_has_a_tenant_column_and_the_policy():
    links = {m._meta.db_table for m in tenant_link_models()}
    assert {"leads_lead_tags", "leads_channel_tags"} <= links
    with connection.cursor() as cursor:
        rows = _policed(cursor)
        cursor.execute(
            "SELECT relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relname = ANY(%s) AND a.attname = 'tenant_id' AND a.attnotnull",
            [sorted(links)],
        )
        not_null = {r[0] for r in cursor.fetchall()}
    assert links - set(rows) == set(), "many-to-many tables without a tenant_id column"
    assert not_null == links
    for table in links:
        assert rows[table] == (True, True, True), table


def test_the_membership_directory_is_policed_like_tenant_rows():
    with connection.cursor() as cursor:
        rows = _policed(cursor)
    assert rows["crm_membership"] == (True, True, True)


# --- No setting opens every tenant ------------------------------------------------------------


def test_the_old_all_tenants_setting_reveals_nothing(world):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.all_tenants', 'on', true)")
        for table in ("crm_auditevent", "crm_membership"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone()[0] == 0, table
    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.all_tenants', 'on', true)")
        assert _tenant_ids("crm_auditevent") == {world.a.tenant.pk}
        assert _tenant_ids("crm_membership") == {world.a.tenant.pk}


def test_the_policy_reads_only_the_tenant_setting():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polname = %s",
            [POLICY],
        )
        predicates = [r[0] for r in cursor.fetchall()]
    assert predicates
    for predicate in predicates:
        assert "app.tenant_id" in predicate and "all_tenants" not in predicate


# --- Memberships ------------------------------------------------------------------------------


def test_another_tenants_memberships_are_invisible_and_not_writable(world):
    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        assert _tenant_ids("crm_membership") == {world.a.tenant.pk}
        cursor.execute(
            "UPDATE crm_membership SET role = 'admin' WHERE tenant_id = %s", [world.b.tenant.pk]
        )
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM crm_membership WHERE tenant_id = %s", [world.b.tenant.pk])
        assert cursor.rowcount == 0
        assert Membership.objects.filter(pk=world.b.rep.pk).first() is None
    with (
        tenant_context(world.a.tenant),
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO crm_membership (public_id, tenant_id, user_id, role, is_active, phone,"
            " created_at) VALUES (gen_random_uuid(), %s, %s, 'admin', true, '', now())",
            [world.b.tenant.pk, world.a.rep.user_id],
        )
    with tenant_context(world.b.tenant):
        world.b.rep.refresh_from_db()
    assert world.b.rep.role == Role.REP


def test_the_narrow_path_answers_one_users_seats_in_every_tenant(world):
    MembershipFactory(tenant=world.b.tenant, user=world.a.rep.user, role=Role.MANAGER)
    with transaction.atomic():  # no tenant set, as in the middleware
        seats = memberships_of(world.a.rep.user)
    assert {(m.tenant.slug, m.role) for m in seats} == {("alpha", Role.REP), ("beta", Role.MANAGER)}
    assert {m.user_id for m in seats} == {world.a.rep.user_id}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosecdef, pg_get_userbyid(p.proowner) = current_user,"
            " has_function_privilege('public', p.oid, 'EXECUTE')"
            " FROM pg_proc p WHERE p.proname = 'crm_memberships_of'"
        )
        assert cursor.fetchone() == (True, False, False)


def test_the_tenant_switcher_lists_the_users_seats_in_several_tenants(world, login):
    MembershipFactory(tenant=world.b.tenant, user=world.a.rep.user, role=Role.REP)
    client = login(world.a.rep)
    response = client.get(reverse("home"), follow=True)
    assert response.status_code == 200
    listed = {m.tenant.slug for m in response.context["user_memberships"]}
    assert listed == {"alpha", "beta"}
    assert response.context["request"].tenant == world.a.tenant
    switched = client.post(reverse("tenant_switch", args=["beta"]))
    assert switched.status_code == 302
    after = client.get(reverse("home"), follow=True)
    assert after.context["request"].tenant == world.b.tenant
    assert client.post(reverse("tenant_switch", args=["nowhere"])).status_code == 404


# --- Link tables ------------------------------------------------------------------------------


def _tagged(side):
    lead = make_lead(side.tenant, phone="+8613957123481")
    tag = make_tag(side.tenant, name=f"{side.tenant.slug}-tag")
    with tenant_context(side.tenant):
        lead.tags.add(tag)
        lead.channel.tags.add(tag)
    return lead, tag


def test_lead_and_channel_tags_carry_their_tenant_and_hide_other_tenants(world):
    lead_a, tag_a = _tagged(world.a)
    lead_b, _tag_b = _tagged(world.b)
    for side in (world.a, world.b):
        with tenant_context(side.tenant):
            assert _tenant_ids("leads_lead_tags") == {side.tenant.pk}
            assert _tenant_ids("leads_channel_tags") == {side.tenant.pk}
    with tenant_context(world.a.tenant):
        assert list(lead_a.tags.all()) == [tag_a]  # the Django API still works
        lead_a.tags.remove(tag_a)
        lead_a.tags.set([tag_a])
        assert list(lead_a.tags.all()) == [tag_a]
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM leads_lead_tags WHERE lead_id = %s", [lead_b.pk])
            assert cursor.rowcount == 0
    with transaction.atomic():
        assert _tenant_ids("leads_lead_tags") == set()


def test_a_lead_cannot_be_tagged_with_another_tenants_tag(world):
    lead_a = make_lead(world.a.tenant)
    tag_b = make_tag(world.b.tenant)
    with (
        tenant_context(world.a.tenant),
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO leads_lead_tags (lead_id, tag_id, tenant_id) VALUES (%s, %s, %s)",
            [lead_a.pk, tag_b.pk, world.a.tenant.pk],
        )


@pytest.mark.parametrize("half", ["lead", "tag"])
def test_a_link_row_of_another_tenants_lead_or_no_tag_is_refused_by_name(world, half):
    """The trigger's refusal names the rows even when one of them is missing or hidden
    (a NULL once made the refusal itself fail: "RAISE statement option cannot be null")."""
    lead = make_lead(world.b.tenant if half == "lead" else world.a.tenant)
    tag = make_tag(world.a.tenant)
    values = [lead.pk, tag.pk] if half == "lead" else [lead.pk, None]
    with (
        tenant_context(world.a.tenant),
        pytest.raises(DatabaseError, match="not of one visible tenant") as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("INSERT INTO leads_lead_tags (lead_id, tag_id) VALUES (%s, %s)", values)
    assert refused.value.__cause__.sqlstate == "23514"  # check_violation


def test_the_channel_key_lookup_answers_only_ids(world):
    channel = make_channel(world.b.tenant)
    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM leads_channel_by_key(%s)", [channel.key])
        assert cursor.fetchall() == [(channel.pk, world.b.tenant.pk)]
        assert [c.name for c in cursor.description] == ["channel_id", "tenant_id"]
        cursor.execute("SELECT count(*) FROM leads_channel WHERE key = %s", [channel.key])
        assert cursor.fetchone()[0] == 0  # the table itself stays closed


# --- The platform role ------------------------------------------------------------------------


@platform_db
def test_the_platform_role_sees_every_tenant_and_bypasses_rls(world):
    _tagged(world.a)
    _tagged(world.b)
    with connections["platform"].cursor() as cursor:
        cursor.execute("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (True, False)
        both = {world.a.tenant.pk, world.b.tenant.pk}
        for table in ("crm_auditevent", "crm_membership", "leads_lead_tags"):
            cursor.execute(f"SELECT DISTINCT tenant_id FROM {table}")
            assert {r[0] for r in cursor.fetchall()} == both, table
    assert settings.DATABASES["platform"]["USER"] != settings.DATABASES["default"]["USER"]


@platform_db
def test_all_tenants_mode_runs_on_the_platform_connection(world):
    from crm.models import AuditEvent
    from crm.tenancy import all_tenants_context

    with all_tenants_context():
        assert AuditEvent.objects.count() == 2
        assert AuditEvent.objects.all().db == "platform"
        with connection.cursor() as cursor:  # raw SQL on the app role's connection: nothing
            cursor.execute("SELECT count(*) FROM crm_auditevent")
            assert cursor.fetchone()[0] == 0


def test_only_the_allow_listed_code_enters_all_tenants_mode():
    """A new caller of all_tenants_context() must be added to PLATFORM_CALLERS (and
    docs/operations.md) on purpose."""
    root = Path(settings.BASE_DIR)
    found = set()
    for app in (
        "crm",
        "customers",
        "leads",
        "opportunities",
        "service_feedback",
        "health",
        "automation",
    ):
        for path in (root / app).rglob("*.py"):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found |= _callers(tree, module)
    assert found == set(PLATFORM_CALLERS)


def _callers(tree, module):
    found = set()

    def visit(node, names):
        for child in ast.iter_child_nodes(node):
            scope = names
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                scope = [*names, child.name]
            if (
                isinstance(child, ast.Call)
                and getattr(child.func, "id", getattr(child.func, "attr", None))
                == "all_tenants_context"
            ):
                found.add(".".join([module, *names]))
            visit(child, scope)

    visit(tree, [])
    return found
