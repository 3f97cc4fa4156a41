"""The board bench's database plumbing (bench/board.py): COPY into a table with its
columns checked against the model, ids reserved from a table's sequence, the owner
connection's transaction under the tenant's RLS setting, and the statistics after a bulk
load."""

from __future__ import annotations

import time

import common
from django.db.models.fields import NOT_PROVIDED


class Table:
    """The columns a COPY writes, checked against the model: every NOT NULL column (but
    an identity `id` left out on purpose) must be written, or the load would fail late."""

    def __init__(self, model, columns: list[str], *, with_id: bool = False):
        self.name = model._meta.db_table
        self.columns = (["id"] if with_id else []) + columns
        known = {f.column for f in model._meta.concrete_fields}
        unknown = set(self.columns) - known
        if unknown:
            raise RuntimeError(f"{self.name}: no such columns {sorted(unknown)}")
        required = {
            f.column
            for f in model._meta.concrete_fields
            if not f.null and not f.primary_key and f.db_default is NOT_PROVIDED
        }
        missing = required - set(self.columns)
        if missing:
            raise RuntimeError(f"{self.name}: NOT NULL columns not written: {sorted(missing)}")
        self.index = {c: n for n, c in enumerate(self.columns)}

    def sql(self) -> str:
        return f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN"


def copy_rows(cursor, table: Table, rows) -> int:
    n = 0
    with cursor.copy(table.sql()) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def reserve_ids(cursor, table: str, n: int) -> int:
    """The first of `n` consecutive ids taken from the table's identity sequence."""
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
        "nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
        [table, table, n],
    )
    return cursor.fetchone()[0] - n + 1


def owner_transaction(tenant):
    """A transaction on the owner connection with the tenant's RLS setting (harmless for a
    superuser, needed for an owner without BYPASSRLS: the tables FORCE row security)."""
    from contextlib import contextmanager

    from django.db import connections, transaction

    @contextmanager
    def scope():
        with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
            cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant.pk)])
            yield cursor

    return scope()


def analyze() -> None:
    """Statistics after a bulk load, before anything joins the new rows (without them the
    planner takes the tenant's million leads for one row and nests loops over them)."""
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "ANALYZE leads_lead, customers_customer, customers_contact, customers_interaction"
        )


# What the bulk load wrote, vacuumed and analysed before measuring.
TABLES = (
    "leads_lead",
    "customers_customer",
    "customers_contact",
    "customers_interaction",
    "customers_preset",
    "leads_invalidreason",
    "leads_channel",
    "leads_repprofile",
    "crm_membership",
    "auth_user",
    "leads_reportday",
    "leads_reportchange",
    "leads_qualityday",
    "leads_qualityrepday",
)


def vacuum_analyze() -> float:
    started = time.perf_counter()
    common.vacuum_analyze(*TABLES)
    return time.perf_counter() - started
