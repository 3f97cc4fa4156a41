"""Raw SQL as the app role over every table of the schema.

With the demo data loaded (seed_demo) next to the suite's own tenants, for each tenant as
the viewer (app.tenant_id set as the product sets it) and each table: the rows of every
other tenant (found by the owner through tenant_id or, for link tables, through their
foreign keys) are not readable, not updatable, not deletable, and a row for another
tenant cannot be inserted. Then the bypass attempts: set_config('app.all_tenants', 'on'),
SET row_security = off, SET ROLE to any role that bypasses RLS, and no tenant at all.

Tables that belong to no tenant (users, tenants, sessions, Django's and beat's own) are
listed as "global" in the figures, not checked."""

from __future__ import annotations

import psycopg

from faults.stack import embedded_conninfo, log

REFUSED = (
    "row-level security",
    "permission denied",
    "must be owner",
    "insufficient",
    "not of one visible tenant",  # the link tables' trigger (crm/rls.py through_tenant_sql)
)


def _schema(stack):
    tables = [
        r[0] for r in stack.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    has_tenant = {
        r[0]
        for r in stack.sql(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
    }
    fks: dict[str, list[tuple[str, str]]] = {}
    for table, column, ref in stack.sql(
        "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text "
        "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
        "AND a.attnum = c.conkey[1] WHERE c.contype = 'f' AND array_length(c.conkey, 1) = 1 "
        "AND c.connamespace = 'public'::regnamespace"
    ):
        fks.setdefault(table, []).append((column, ref))
    pks = dict(
        stack.sql(
            "SELECT i.indrelid::regclass::text, a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indisprimary AND array_length(i.indkey::int[], 1) = 1"
        )
    )
    return tables, has_tenant, fks, pks


def _owner_sql(table, has_tenant, fks, pks, depth=0) -> str | None:
    """SQL giving (pk, owning tenant id) for each row of `table`, or None if global."""
    pk = pks.get(table)
    if pk is None:
        return None
    if table in has_tenant:
        return f'SELECT "{pk}" AS pk, tenant_id AS owner FROM "{table}"'
    if depth > 3:
        return None
    for column, ref in fks.get(table, []):
        if ref == "crm_tenant":
            return f'SELECT "{pk}" AS pk, "{column}" AS owner FROM "{table}"'
        inner = _owner_sql(ref, has_tenant, fks, pks, depth + 1)
        if inner is not None:
            return (
                f'SELECT t."{pk}" AS pk, r.owner FROM "{table}" t '
                f'JOIN ({inner}) r ON r.pk = t."{column}"'
            )
    return None


def _attempt(conn, sql, params=()) -> tuple[str, int]:
    """Run `sql` in a savepoint: ("ok", rowcount) or ("refused"|"error:…", 0)."""
    try:
        with conn.transaction():
            cur = conn.execute(sql, params)
            count = cur.rowcount
            raise _Rollback(count)
    except _Rollback as rb:
        return "ok", rb.count
    except psycopg.Error as exc:
        text = str(exc).lower()
        if any(word in text for word in REFUSED):
            return "refused", 0
        return "error:" + str(exc).splitlines()[0][:100], 0


class _Rollback(Exception):
    def __init__(self, count):
        self.count = count


def run(stack, world) -> dict:
    log("loading the demo tenants (seed_demo)")
    stack.manage("seed_demo")
    tables, has_tenant, fks, pks = _schema(stack)
    tenants = [r[0] for r in stack.sql("SELECT id FROM crm_tenant ORDER BY id")]
    owned: dict[str, dict[int, list]] = {}
    global_tables = []
    for table in sorted(tables):
        sql = _owner_sql(table, has_tenant, fks, pks)
        if sql is None:
            global_tables.append(table)
            continue
        rows: dict[int, list] = {}
        for pk, owner in stack.sql(sql):
            rows.setdefault(owner, []).append(pk)
        owned[table] = rows
    tables_with_rows = sum(1 for t in owned.values() if t)

    reads = updates = deletes = inserts = 0
    problems: list[dict] = []
    insert_outcomes: dict[str, int] = {}
    visible_totals = 0
    conninfo = embedded_conninfo(stack.app_url)
    with psycopg.connect(**conninfo) as conn:
        for viewer in tenants:
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", [str(viewer)])
                for table, rows in owned.items():
                    pk = pks[table]
                    foreign = [p for owner, ps in rows.items() if owner != viewer for p in ps]
                    status, n = _attempt(
                        conn,
                        f'SELECT 1 FROM "{table}" WHERE "{pk}" = ANY(%s)',
                        [foreign],
                    )
                    if status == "ok" and n:
                        reads += n
                        problems.append({"table": table, "viewer": viewer, "read": n})
                    if foreign:
                        status, n = _attempt(
                            conn,
                            f'UPDATE "{table}" SET "{pk}" = "{pk}" WHERE "{pk}" = ANY(%s)',
                            [foreign],
                        )
                        if status == "ok" and n:
                            updates += n
                            problems.append({"table": table, "viewer": viewer, "updated": n})
                        status, n = _attempt(
                            conn,
                            f'DELETE FROM "{table}" WHERE "{pk}" = ANY(%s)',
                            [foreign],
                        )
                        if status == "ok" and n:
                            deletes += n
                            problems.append({"table": table, "viewer": viewer, "deleted": n})
                    # INSERT a row of another tenant (only the columns that say whose it is).
                    target = next((t for t in tenants if t != viewer), None)
                    cols, vals = [], []
                    if table in has_tenant:
                        cols.append("tenant_id")
                        vals.append(target)
                    for column, ref in fks.get(table, []):
                        if ref in owned and owned[ref].get(target):
                            cols.append(column)
                            vals.append(owned[ref][target][0])
                    if cols:
                        col_sql = ", ".join(f'"{c}"' for c in cols)
                        marks = ", ".join(["%s"] * len(vals))
                        status, n = _attempt(
                            conn,
                            f'INSERT INTO "{table}" ({col_sql}) VALUES ({marks})',
                            vals,
                        )
                        outcome = {"refused": "refused", "ok": "written"}.get(
                            status, "not refused by a policy"
                        )
                        insert_outcomes[outcome] = insert_outcomes.get(outcome, 0) + 1
                        if outcome != "refused":
                            inserts += 1
                            if len([p for p in problems if "insert" in p]) < 40:
                                problems.append(
                                    {"table": table, "viewer": viewer, "insert": status}
                                )
                    status, n = _attempt(conn, f'SELECT 1 FROM "{table}"')
                    visible_totals += n
            conn.rollback()

        # Bypass attempts.
        bypass: dict[str, int | str] = {}

        def foreign_visible(label: str, viewer: int | None) -> None:
            seen = 0
            for table, rows in owned.items():
                foreign = [p for owner, ps in rows.items() if owner != viewer for p in ps]
                status, n = _attempt(
                    conn,
                    f'SELECT 1 FROM "{table}" WHERE "{pks[table]}" = ANY(%s)',
                    [foreign],
                )
                seen += n if status == "ok" else 0
            bypass[label] = seen

        viewer = tenants[-1]
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', '', false)")
            foreign_visible("no_tenant_set", None)
        conn.rollback()
        with conn.transaction():
            status, _ = _attempt(conn, "SELECT set_config('app.all_tenants', 'on', false)")
            if status == "ok":
                conn.execute("SELECT set_config('app.all_tenants', 'on', false)")
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", [str(viewer)])
            foreign_visible("set_config_all_tenants_on", viewer)
        conn.rollback()
        conn.execute("RESET ALL")
        with conn.transaction():
            status, _ = _attempt(conn, "SET row_security = off")
            if status == "ok":
                conn.execute("SET row_security = off")
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", [str(viewer)])
            foreign_visible("row_security_off", viewer)
        conn.rollback()
        conn.execute("RESET ALL")
        roles = [
            r[0]
            for r in stack.sql(
                "SELECT rolname FROM pg_roles WHERE (rolbypassrls OR rolsuper) "
                "AND rolname NOT LIKE 'pg\\_%%'"
            )
        ]
        became = []
        for role in roles:
            with conn.transaction():
                status, _ = _attempt(conn, f'SET ROLE "{role}"')
                if status == "ok":
                    became.append(role)
            conn.rollback()
        bypass["set_role_to_bypass_roles"] = f"{len(became)}/{len(roles)} succeeded"

    leaks_bypass = sum(v for v in bypass.values() if isinstance(v, int))
    ok = reads == updates == deletes == inserts == 0 and leaks_bypass == 0 and not became
    return {
        "ok": ok,
        "key": (
            f"{len(owned)} tenant tables × {len(tenants)} viewers: {reads} foreign rows read, "
            f"{updates + deletes} updated/deleted, {inserts} inserts not refused; "
            f"bypass attempts saw {leaks_bypass} foreign rows, SET ROLE {len(became)}/{len(roles)}"
        ),
        "tenants": len(tenants),
        "tenant_tables": len(owned),
        "tenant_tables_with_rows": tables_with_rows,
        "global_tables": global_tables,
        "foreign_rows_read": reads,
        "foreign_rows_updated": updates,
        "foreign_rows_deleted": deletes,
        "foreign_inserts_not_refused": inserts,
        "insert_outcomes": insert_outcomes,
        "bypass": bypass,
        "roles_that_bypass_rls": roles,
        "set_role_succeeded": became,
        "problems": problems[:40],
    }
