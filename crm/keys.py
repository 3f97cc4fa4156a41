"""Fence 3: the keys. Every tenant table is keyed `(tenant_id, id)` and every reference
between two tenant rows is a composite foreign key `(tenant_id, x_id) → (tenant_id, id)`,
so PostgreSQL itself refuses a row that points at another tenant's row, whoever writes it
(row-level security on or off, the owner included). It is also the shape Citus needs to
distribute the tenant tables by `tenant_id`, colocated (docs/scaling.md).

Django keeps `id` as the model's primary key; only the database's keys change:

- a reference from a tenant model to another is a `TenantForeignKey` (or
  `TenantOneToOneField`, crm/fields.py): Django creates no constraint for it (its own
  single-column one would need a unique index on `id` alone, which a `(tenant_id, id)`
  key does not give);
- `install()` runs after every `migrate` (post_migrate, as the owner, before the
  row-level security of crm/rls.py) and is idempotent: it makes each tenant table's
  primary key `(tenant_id, id)` and creates each composite foreign key,
  DEFERRABLE INITIALLY DEFERRED like Django's own. A table added later by any app gets
  its keys at its first `migrate`, with nobody writing SQL;
- every unique constraint of a tenant model starts with `tenant` (a one-to-one's
  uniqueness is the model's `UniqueConstraint(fields=["tenant", x])`).

tests/isolation/test_keys.py reads the catalog of the migrated database and fails on any
tenant table that breaks one of these, saying what to change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, models

from crm.fields import TenantForeignKey, TenantOneToOneField

TENANT_COLUMN = "tenant_id"

# References between tenant rows kept without any database constraint on purpose (app
# label.Model.field → why). Everything else between two tenant tables is checked.
UNCHECKED_REFERENCES: dict[str, str] = {
    "leads.LeadActivity.lead": "the nightly statement writes a million rows from the leads"
    " themselves; a key would check each again at commit",
    "leads.LeadActivity.owner": "as for the lead: taken from the lead rows in the same statement",
    "leads.SearchGram.lead": "kept by triggers on the lead table; a key would need an index"
    " on lead_id, the size of the table again",
    "customers.CustomerSearchGram.customer": "kept by triggers on the customer table, as the"
    " lead search grams",
    "automation.Run.rule": "the run log, written at events × rules a second in one statement a"
    " batch by the engine, for the rule it has just read in the same transaction; the checks"
    " cost more than the rest of the batch's writes (docs/automation.md)",
    "automation.Run.event": "as for the rule: the event the engine has just drained",
    "automation.Miss.event": "the run log's conditions found false, a row per drained event"
    " written with the batch's runs; a deleted event leaves them (they then show no values)",
}


# --- What the keys should be, from the models ------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A composite foreign key `table (tenant_id, column) → ref_table (tenant_id, ref_column)`."""

    table: str
    column: str
    ref_table: str
    ref_column: str
    label: str  # app_label.Model.field, for messages

    @property
    def name(self) -> str:
        return constraint_name(self.table, self.column, "tfk")


def constraint_name(table: str, column: str, suffix: str) -> str:
    """`<table>_<column>_<suffix>`, shortened with a digest past PostgreSQL's 63 bytes."""
    name = f"{table}_{column}_{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324 — a name, not a secret
    return f"{name[: 63 - len(suffix) - 10]}_{digest}_{suffix}"


def field_label(model, field) -> str:
    return f"{model._meta.app_label}.{model._meta.object_name}.{field.name}"


def tenant_models() -> list[type]:
    """The models whose tables are distributed by tenant: every concrete model with a
    `tenant` foreign key, and the auto-created many-to-many tables between them."""
    from crm.rls import tenant_link_models, tenant_related_models

    return [*tenant_related_models(), *tenant_link_models()]


def tenant_tables() -> list[str]:
    return sorted({m._meta.db_table for m in tenant_models()})


def _references_of(model, tenant_set: set) -> list[tuple[models.Field, bool]]:
    """(field, checked) for each of `model`'s foreign keys to another tenant model."""
    found = []
    for field in model._meta.concrete_fields:
        if not field.is_relation or field.name == "tenant":
            continue
        if field.related_model not in tenant_set:
            continue
        unchecked = (
            not isinstance(field, TenantForeignKey | TenantOneToOneField)
            and not field.db_constraint
            and field_label(model, field) in UNCHECKED_REFERENCES
        )
        found.append((field, not unchecked))
    return found


def references() -> list[Reference]:
    """Every composite foreign key there should be between tenant tables."""
    tenant_set = set(tenant_models())
    refs = []
    for model in tenant_models():
        for field, checked in _references_of(model, tenant_set):
            if not checked:
                continue
            target = field.target_field
            refs.append(
                Reference(
                    table=model._meta.db_table,
                    column=field.column,
                    ref_table=field.related_model._meta.db_table,
                    ref_column=target.column,
                    label=field_label(model, field),
                )
            )
    return refs


def reference_tables(connection=None) -> list[str]:
    """The global tables (Citus reference tables): every table of the schema without a
    tenant column, `django_migrations` included."""
    connection = connection or connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT EXISTS ("
            "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
            "  AND a.attname = %s AND NOT a.attisdropped) ORDER BY 1",
            [TENANT_COLUMN],
        )
        return [row[0] for row in cursor.fetchall()]


# --- The catalog ------------------------------------------------------------------------------


def primary_keys(cursor, tables: list[str]) -> dict[str, tuple[str, list[str]]]:
    """{table: (constraint name, [columns in key order])} of the tables that have one."""
    cursor.execute(
        "SELECT c.relname, k.conname, array_agg(a.attname ORDER BY u.ord)"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum"
        " WHERE k.contype = 'p' AND c.relname = ANY(%s) GROUP BY c.relname, k.conname",
        [tables],
    )
    return {row[0]: (row[1], list(row[2])) for row in cursor.fetchall()}


@dataclass(frozen=True)
class ForeignKeyRow:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    deferred: bool


def foreign_keys(cursor) -> list[ForeignKeyRow]:
    """Every foreign key of the public schema, columns in constraint order."""
    cursor.execute(
        "SELECT k.conname, c.relname,"
        " (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY"
        "   AS u(attnum, ord) JOIN pg_attribute a ON a.attrelid = k.conrelid"
        "   AND a.attnum = u.attnum),"
        " r.relname,"
        " (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY"
        "   AS u(attnum, ord) JOIN pg_attribute a ON a.attrelid = k.confrelid"
        "   AND a.attnum = u.attnum),"
        " k.condeferrable AND k.condeferred"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " JOIN pg_class r ON r.oid = k.confrelid WHERE k.contype = 'f'"
    )
    return [
        ForeignKeyRow(row[0], row[1], tuple(row[2]), row[3], tuple(row[4]), row[5])
        for row in cursor.fetchall()
    ]


@dataclass(frozen=True)
class UniqueIndex:
    name: str
    table: str
    columns: tuple[str | None, ...]  # None for an expression
    constraint: str | None  # the constraint it backs (NULL for a bare unique index)
    primary: bool


def unique_indexes(cursor, tables: list[str]) -> list[UniqueIndex]:
    cursor.execute(
        "SELECT i.relname, c.relname,"
        " (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(x.indkey::int2[])"
        "   WITH ORDINALITY AS u(attnum, ord) LEFT JOIN pg_attribute a"
        "   ON a.attrelid = x.indrelid AND a.attnum = u.attnum),"
        " k.conname, x.indisprimary"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class c ON c.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid"
        "   AND k.contype IN ('p', 'u', 'x')"
        " WHERE x.indisunique AND c.relname = ANY(%s)",
        [tables],
    )
    return [UniqueIndex(row[0], row[1], tuple(row[2]), row[3], row[4]) for row in cursor.fetchall()]


# --- Making the database so -------------------------------------------------------------------


class KeysError(RuntimeError):
    """The database has a reference the keys cannot be made around (a global table
    pointing at a tenant row)."""


def _q(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def plan(connection) -> list[str]:
    """The statements that bring the database's keys to the models' (none when they are)."""
    tables = tenant_tables()
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        tables = [t for t in tables if t in existing]
        columns = _columns(cursor, tables)
        pks = primary_keys(cursor, tables)
        fks = foreign_keys(cursor)
        uniques = unique_indexes(cursor, tables)
    tenant_set = set(tables)
    wanted = [
        r
        for r in references()
        if r.table in tenant_set
        and r.ref_table in tenant_set
        and r.column in columns.get(r.table, ())
        and TENANT_COLUMN in columns.get(r.table, ())
    ]
    wanted_columns = {(r.table, r.column) for r in wanted}
    q = lambda name: _q(connection, name)  # noqa: E731

    statements: list[str] = []
    # 1. Django's single-column foreign keys into tenant tables go: the composite ones
    #    replace them, and they hold the `id`-only primary keys in place.
    for fk in fks:
        if fk.ref_table not in tenant_set or TENANT_COLUMN in fk.ref_columns:
            continue
        if len(fk.columns) == 1 and (fk.table, fk.columns[0]) in wanted_columns:
            statements.append(f"ALTER TABLE {q(fk.table)} DROP CONSTRAINT {q(fk.name)}")
        elif fk.table in tenant_set and len(fk.columns) == 1:
            raise KeysError(
                f"{fk.table}.{fk.columns[0]} references {fk.ref_table} without its tenant: make"
                " the field a crm.fields.TenantForeignKey (then makemigrations)."
            )
        else:
            raise KeysError(
                f"{fk.table} ({', '.join(fk.columns)}) references the tenant table"
                f" {fk.ref_table}: a global table cannot point at a tenant's row; give"
                f" {fk.table} a tenant."
            )
    # 2. Primary keys: (tenant_id, id).
    for table in tables:
        if "id" not in columns.get(table, ()) or TENANT_COLUMN not in columns.get(table, ()):
            continue  # e.g. the search grams' own (tenant_id, gram, …) key
        name, key = pks.get(table, (f"{table}_pkey", []))
        if key == [TENANT_COLUMN, "id"]:
            continue
        drop = f"DROP CONSTRAINT {q(name)}, " if key else ""
        statements.append(
            f"ALTER TABLE {q(table)} {drop}ADD CONSTRAINT {q(f'{table}_pkey')}"
            f" PRIMARY KEY ({TENANT_COLUMN}, id)"
        )
    # 3. The link tables' own unique pair, tenant first (the models' are Django's, and
    #    the catalog test holds them to it).
    links = {m._meta.db_table for m in _link_models()}
    for index in uniques:
        if index.table not in links or index.primary or index.columns[:1] == (TENANT_COLUMN,):
            continue
        cols = ", ".join(q(c) for c in (TENANT_COLUMN, *index.columns))
        drop = (
            f"ALTER TABLE {q(index.table)} DROP CONSTRAINT {q(index.constraint)}"
            if index.constraint
            else f"DROP INDEX {q(index.name)}"
        )
        statements += [
            drop,
            f"ALTER TABLE {q(index.table)} ADD CONSTRAINT"
            f" {q(constraint_name(index.table, 'tenant', 'uniq'))} UNIQUE ({cols})",
        ]
    # 4. The composite foreign keys, checked at commit like Django's.
    have = {(fk.table, fk.columns, fk.ref_table, fk.ref_columns) for fk in fks}
    for r in wanted:
        cols = (TENANT_COLUMN, r.column)
        if (r.table, cols, r.ref_table, (TENANT_COLUMN, r.ref_column)) in have:
            continue
        statements += [
            f"ALTER TABLE {q(r.table)} ADD CONSTRAINT {q(r.name)} FOREIGN KEY"
            f" ({TENANT_COLUMN}, {q(r.column)}) REFERENCES {q(r.ref_table)}"
            f" ({TENANT_COLUMN}, {q(r.ref_column)}) DEFERRABLE INITIALLY DEFERRED"
        ]
    return statements


def _link_models() -> list[type]:
    from crm.rls import tenant_link_models

    return tenant_link_models()


def _columns(cursor, tables: list[str]) -> dict[str, set[str]]:
    cursor.execute(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " WHERE c.relname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        [tables],
    )
    found: dict[str, set[str]] = {}
    for table, column in cursor.fetchall():
        found.setdefault(table, set()).add(column)
    return found


def install(using: str) -> None:
    """Bring the tenant tables' keys to the models'. Idempotent; runs as the tables' owner,
    in one transaction (a failure leaves the keys as they were)."""
    from django.db import transaction

    if "owner" in settings.DATABASES and using != "owner":
        return  # e.g. `flush` as the app role: it cannot alter tables, and need not.
    connection = connections[using]
    with transaction.atomic(using=using):
        statements = plan(connection)
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def on_post_migrate(sender, using="default", **kwargs) -> None:
    install(using)


# --- The Citus plan ---------------------------------------------------------------------------

# The table every distributed table is colocated with (any tenant table would do: this one
# exists from the kernel's first migration).
COLOCATION_TABLE = "crm_membership"


def citus_statements(connection=None) -> list[str]:
    """The SQL that distributes this database with Citus (`manage.py citus_plan`,
    docs/scaling.md), read from the catalog, so it covers the tables of every app as
    migrated. In order: the global tables become reference tables; the composite keys
    between tenant tables are dropped (some reference each other in a cycle, and Citus
    distributes a table only when no local table references it or is referenced by it);
    every tenant table is distributed by `tenant_id`, colocated with the first; the keys
    are added back, as they were, now between colocated shards."""
    connection = connection or connections["default"]
    with connection.cursor() as cursor:
        global_tables = reference_tables(connection)
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
        )
        tenant = [row[0] for row in cursor.fetchall() if row[0] not in set(global_tables)]
        cursor.execute(
            "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)"
            " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
            " JOIN pg_class r ON r.oid = k.confrelid"
            " WHERE k.contype = 'f' AND c.relname = ANY(%s) AND r.relname = ANY(%s)"
            " ORDER BY 1, 2",
            [tenant, tenant],
        )
        between = cursor.fetchall()
    q = connection.ops.quote_name
    tenant.sort(key=lambda t: (t != COLOCATION_TABLE, t))
    return [
        *(f"SELECT create_reference_table('{t}');" for t in global_tables),
        *(f"ALTER TABLE {q(t)} DROP CONSTRAINT {q(name)};" for t, name, _ in between),
        *(
            f"SELECT create_distributed_table('{t}', '{TENANT_COLUMN}', colocate_with =>"
            f" '{'none' if t == COLOCATION_TABLE else COLOCATION_TABLE}');"
            for t in tenant
        ),
        *(f"ALTER TABLE {q(t)} ADD CONSTRAINT {q(name)} {sql};" for t, name, sql in between),
    ]
