"""Fence 3: the keys (crm/keys.py). Read from the catalog of the migrated test database:
every tenant table keyed (tenant_id, id), every reference between tenant rows composite,
every unique key tenant first, no global table pointing at a tenant row; and PostgreSQL
itself refusing a row that points at another tenant's row, with row-level security off."""

import psycopg
import pytest
from django.db import IntegrityError, connection, connections, models, transaction

from crm.fields import TenantForeignKey, TenantOneToOneField
from crm.keys import (
    TENANT_COLUMN,
    UNCHECKED_REFERENCES,
    citus_statements,
    field_label,
    foreign_keys,
    plan,
    primary_keys,
    reference_tables,
    references,
    tenant_models,
    tenant_tables,
    unique_indexes,
)
from crm.tenancy import tenant_context
from tests.leads.factories import make_lead, make_tag

FIX = " (docs/scaling.md, 'The keys')"


def _catalog_tenant_tables(cursor) -> list[str]:
    """Every table of the schema with a tenant column: what Citus would distribute."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND EXISTS ("
        "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = %s"
        "  AND NOT a.attisdropped) ORDER BY 1",
        [TENANT_COLUMN],
    )
    return [row[0] for row in cursor.fetchall()]


def _columns(cursor, table: str) -> set[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped",
        [table],
    )
    return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_every_tenant_table_is_keyed_tenant_first():
    with connection.cursor() as cursor:
        tables = _catalog_tenant_tables(cursor)
        pks = primary_keys(cursor, tables)
        problems = []
        for table in tables:
            _name, key = pks.get(table, ("", []))
            has_id = "id" in _columns(cursor, table)
            if has_id and key != [TENANT_COLUMN, "id"]:
                problems.append(
                    f"{table}: primary key ({', '.join(key)}), not (tenant_id, id). Its model"
                    " needs a `tenant` foreign key to crm.Tenant (TenantOwned) so that"
                    " crm.keys.install() keys it at migrate"
                )
            elif not has_id and key[:1] != [TENANT_COLUMN]:
                problems.append(
                    f"{table}: primary key ({', '.join(key)}) must start with tenant_id"
                )
    assert "leads_lead" in tables and "leads_lead_tags" in tables
    assert not problems, "\n".join(problems) + FIX


@pytest.mark.django_db
def test_every_unique_key_of_a_tenant_table_starts_with_the_tenant():
    with connection.cursor() as cursor:
        tables = _catalog_tenant_tables(cursor)
        uniques = unique_indexes(cursor, tables)
    problems = [
        f"{u.table}: unique {'constraint' if u.constraint else 'index'} {u.name}"
        f" on ({', '.join(c or '<expression>' for c in u.columns)}) does not start with"
        " tenant_id: declare it models.UniqueConstraint(fields=['tenant', …]) (a field's"
        " unique=True or a OneToOneField cannot be: use the constraint, and"
        " crm.fields.TenantOneToOneField)"
        for u in uniques
        if u.columns[:1] != (TENANT_COLUMN,)
    ]
    assert len(uniques) > len(tables)  # the primary keys, and more
    assert not problems, "\n".join(problems) + FIX


@pytest.mark.django_db
def test_every_foreign_key_between_tenant_tables_is_composite_and_deferred():
    with connection.cursor() as cursor:
        tables = set(_catalog_tenant_tables(cursor))
        fks = foreign_keys(cursor)
    problems = []
    between = 0
    for fk in fks:
        if fk.ref_table not in tables:
            continue  # to a global (reference) table: crm_tenant, auth_user, …
        if fk.table not in tables:
            problems.append(
                f"{fk.table} ({', '.join(fk.columns)}) → {fk.ref_table}: a global table points"
                f" at a tenant's row; give {fk.table}'s model a `tenant` (TenantOwned)"
            )
            continue
        between += 1
        if fk.columns[:1] != (TENANT_COLUMN,) or fk.ref_columns[:1] != (TENANT_COLUMN,):
            problems.append(
                f"{fk.table} ({', '.join(fk.columns)}) → {fk.ref_table}"
                f" ({', '.join(fk.ref_columns)}): not composite (tenant_id, x_id) →"
                " (tenant_id, id); make the field a crm.fields.TenantForeignKey and run"
                " makemigrations"
            )
        elif not fk.deferred:
            problems.append(f"{fk.name}: not DEFERRABLE INITIALLY DEFERRED")
    assert between >= 100
    assert not problems, "\n".join(problems) + FIX


@pytest.mark.django_db
def test_every_reference_between_tenant_models_is_a_tenant_key():
    """The models' side: Django's state says no single-column constraint (so no later
    migration creates one against a (tenant_id, id) key), and each checked reference has
    its composite key in the database."""
    tenant_set = set(tenant_models())
    problems = []
    for model in tenant_set:
        if model._meta.auto_created:
            continue  # a many-to-many's link table: its field below
        for field in model._meta.get_fields(include_hidden=True):
            if field.auto_created or not field.is_relation or field.model is not model:
                continue
            if field.name == "tenant" or field.related_model not in tenant_set:
                continue
            label = field_label(model, field)
            if field.many_to_many:
                if field.remote_field.db_constraint:
                    problems.append(f"{label}: a ManyToManyField needs db_constraint=False")
            elif label in UNCHECKED_REFERENCES:
                if isinstance(field, TenantForeignKey | TenantOneToOneField) or (
                    field.db_constraint
                ):
                    problems.append(f"{label}: listed unchecked, so a plain db_constraint=False")
            elif not isinstance(field, TenantForeignKey | TenantOneToOneField):
                kind = "TenantOneToOneField" if field.one_to_one else "TenantForeignKey"
                problems.append(
                    f"{label}: a reference to another tenant model must be crm.fields.{kind}"
                    " (then makemigrations), or, kept without a constraint on purpose,"
                    " db_constraint=False and listed in crm.keys.UNCHECKED_REFERENCES with why"
                )
            elif field.one_to_one:
                pairs = [
                    tuple(c.fields)
                    for c in model._meta.constraints
                    if isinstance(c, models.UniqueConstraint)
                ]
                if ("tenant", field.name) not in pairs:
                    problems.append(
                        f"{label}: declare models.UniqueConstraint(fields=['tenant',"
                        f" '{field.name}'], …) in {model.__name__}.Meta.constraints"
                    )
    every_label = {
        field_label(m, f) for m in tenant_set for f in m._meta.concrete_fields if f.is_relation
    }
    stale = set(UNCHECKED_REFERENCES) - every_label
    assert not stale, f"crm.keys.UNCHECKED_REFERENCES names no field: {sorted(stale)}"
    with connection.cursor() as cursor:
        have = {(fk.table, fk.columns, fk.ref_table, fk.ref_columns) for fk in foreign_keys(cursor)}
    for r in references():
        key = (r.table, (TENANT_COLUMN, r.column), r.ref_table, (TENANT_COLUMN, r.ref_column))
        if key not in have:
            problems.append(f"{r.label}: no composite key in the database (migrate runs it)")
    assert not problems, "\n".join(problems) + FIX


@pytest.mark.django_db
def test_the_keys_are_installed_and_a_second_migrate_changes_nothing():
    # The plan reads the catalog only: as the app role here, as the owner at migrate.
    assert plan(connection) == []


@pytest.mark.django_db
def test_the_global_tables_are_the_reference_tables_and_the_rest_are_tenant_tables():
    with connection.cursor() as cursor:
        catalog = _catalog_tenant_tables(cursor)
    global_tables = reference_tables()
    assert set(tenant_tables()) == set(catalog)
    assert {"crm_tenant", "auth_user", "django_content_type", "django_session"} <= set(
        global_tables
    )
    assert not set(global_tables) & set(catalog)


# --- PostgreSQL itself refuses another tenant's row -------------------------------------------


def _owner_connection():
    """A connection of our own as the tables' owner (DATABASE_OWNER_URL), on the test
    database: no Django, no tenant setting."""
    s = connections["owner"].settings_dict
    return psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=connections["default"].settings_dict["NAME"],
    )


def _copy_sql(table: str, changes: str) -> str:
    """INSERT a copy of one row of `table` (by id), with `changes` (a jsonb object)."""
    return (
        f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table},"
        f" to_jsonb(r) || {changes})).* FROM {table} r WHERE r.id = %s"
    )


@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_a_reference_to_another_tenants_row_as_the_owner_without_rls(world):
    lead_a = make_lead(world.a.tenant, owner=world.a.rep)
    tag_a, tag_b = make_tag(world.a.tenant), make_tag(world.b.tenant)
    with _owner_connection() as owner, owner.cursor() as cursor:
        owner.autocommit = False
        # Row-level security off, in this transaction, on every table involved: it is not
        # what refuses the rows below.
        for table in ("leads_lead", "crm_membership", "leads_tag", "leads_lead_tags"):
            cursor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        # The link table's own trigger checks the tenants too: off, to see the key alone.
        cursor.execute("ALTER TABLE leads_lead_tags DISABLE TRIGGER USER")
        cursor.execute("SELECT count(DISTINCT tenant_id) FROM crm_membership")
        assert cursor.fetchone()[0] == 2  # the owner sees both tenants
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # at the statement, not at commit

        refused = [
            # A's lead handed to B's rep.
            ("UPDATE leads_lead SET owner_id = %s WHERE id = %s", [world.b.rep.pk, lead_a.pk]),
            # A new row of A's pointing at B's rep.
            (
                _copy_sql(
                    "leads_lead",
                    "jsonb_build_object('id', -1, 'public_id',"
                    " gen_random_uuid(), 'owner_id', %s::bigint)",
                ),
                [world.b.rep.pk, lead_a.pk],
            ),
            # B's tag on A's lead, through the many-to-many table.
            (
                "INSERT INTO leads_lead_tags (tenant_id, lead_id, tag_id) VALUES (%s, %s, %s)",
                [world.a.tenant.pk, lead_a.pk, tag_b.pk],
            ),
            # A's lead moved to B, its rep still A's.
            ("UPDATE leads_lead SET tenant_id = %s WHERE id = %s", [world.b.tenant.pk, lead_a.pk]),
        ]
        for sql, params in refused:
            cursor.execute("SAVEPOINT s")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                cursor.execute(sql, params)
            cursor.execute("ROLLBACK TO SAVEPOINT s")
        # The same rows within one tenant go in.
        cursor.execute(
            "UPDATE leads_lead SET owner_id = %s WHERE id = %s", [world.a.manager.pk, lead_a.pk]
        )
        cursor.execute(
            "INSERT INTO leads_lead_tags (tenant_id, lead_id, tag_id) VALUES (%s, %s, %s)",
            [world.a.tenant.pk, lead_a.pk, tag_a.pk],
        )
        owner.rollback()


@pytest.mark.django_db
def test_the_app_role_cannot_point_at_another_tenants_row_by_its_id(world):
    # Row-level security hides B's rep from A's transaction, but a foreign key check does
    # not read through the policy: a single-column key on `owner_id` would accept B's id.
    lead = make_lead(world.a.tenant, owner=world.a.rep)
    with (
        tenant_context(world.a.tenant),
        pytest.raises(IntegrityError),
        transaction.atomic(),
    ):
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        type(lead).objects.filter(pk=lead.pk).update(owner_id=world.b.rep.pk)


# --- The Citus plan ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_citus_plan_names_every_table_once_in_an_order_citus_takes():
    statements = citus_statements(connection)
    with connection.cursor() as cursor:
        tenant = set(_catalog_tenant_tables(cursor))
        between = [
            fk for fk in foreign_keys(cursor) if fk.table in tenant and fk.ref_table in tenant
        ]
    global_tables = set(reference_tables())
    kinds = [
        s.split("(")[0].split()[-1] if s.startswith("SELECT") else s.split()[3] for s in statements
    ]
    # reference tables, then the keys between tenant tables dropped, the tenant tables
    # distributed, the keys added back.
    runs = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
    assert runs == ["create_reference_table", "DROP", "create_distributed_table", "ADD"]
    named = [s.split("'")[1] for s in statements if s.startswith("SELECT")]
    assert sorted(named) == sorted(global_tables | tenant)  # each once
    assert {s.split("'")[1] for s in statements if "create_reference_table" in s} == global_tables
    distributed = [s for s in statements if "create_distributed_table" in s]
    assert distributed[0] == (
        "SELECT create_distributed_table('crm_membership', 'tenant_id', colocate_with => 'none');"
    )
    assert all("colocate_with => 'crm_membership'" in s for s in distributed[1:])
    assert kinds.count("DROP") == kinds.count("ADD") == len(between) >= 100
