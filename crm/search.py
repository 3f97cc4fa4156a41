"""Text search under row-level security, through a gram table (the lead search, the
customer search; docs/decisions.md, "Lead search through a gram table").

`LIKE` is not leakproof, so under a tenant policy no index serves it. A list's search
therefore keeps a table of grams, one row per (tenant, gram, row), keyed by a btree that
equality and range conditions (leakproof) can use; triggers of the app keep it. A term's
candidates are read here, in one bounded query, and the list then filters on that short
list of ids and checks the exact condition itself.

- `text_grams`: a term's two-character grams; a one-character term is a range instead
  (`first_char_range`), since the table keeps every position's two characters and the
  last character alone;
- `gram_join`: the rows holding every one of some grams, one primary-key join per gram;
- `bounded_ids`: the distinct ids of candidate SQL, or None past a cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

# The most candidates a search narrows its list to; with more, the list is read in its own
# order and each row checked (a term that common fills a page soon).
SEARCH_CAP = 3_000
MAX_GRAMS = 4  # per part: more joins cost planning time and narrow little more
# Gram entries read per id wanted, at most: a row holds few grams of one term.
ENTRIES_READ = 20


def spread(items: list[str], most: int) -> list[str]:
    """At most `most` of `items`, the first and the last among them, evenly spaced."""
    if len(items) <= most:
        return items
    step = (len(items) - 1) / (most - 1)
    return [items[round(k * step)] for k in range(most)]


def text_grams(lowered: str) -> list[str]:
    """The term's distinct two-character grams, in order (none for one character)."""
    grams = [lowered[i : i + 2] for i in range(len(lowered) - 1)]
    return list(dict.fromkeys(grams))


def first_char_range(table: str, key: str, tenant_id: int, char: str) -> tuple[str, list]:
    """The rows with a gram starting with `char`: a range of the byte-ordered column."""
    sql = f"SELECT {key} FROM {table} WHERE tenant_id = %s AND gram >= %s AND gram < %s"  # noqa: S608
    return sql, [tenant_id, char, chr(min(ord(char) + 1, 0x10FFFF))]


def gram_join(table: str, key: str, tenant_id: int, grams: list[str]) -> tuple[str, list]:
    """The rows having every one of `grams` (at most MAX_GRAMS of them, spread over the
    term): one primary-key join per gram, so the planner starts from the rarest."""
    grams = spread(grams, MAX_GRAMS)
    sql = f"SELECT g0.{key} FROM {table} g0"  # noqa: S608
    for k in range(1, len(grams)):
        sql += (
            f" JOIN {table} g{k} ON g{k}.tenant_id = g0.tenant_id"
            f" AND g{k}.gram = %s AND g{k}.{key} = g0.{key}"
        )
    sql += " WHERE g0.tenant_id = %s AND g0.gram = %s"
    return sql, [*grams[1:], tenant_id, grams[0]]


def text_candidates(table: str, key: str, tenant_id: int, lowered: str) -> tuple[str, list]:
    """Candidate SQL for a lower-cased text term."""
    if len(lowered) == 1:
        return first_char_range(table, key, tenant_id, lowered)
    return gram_join(table, key, tenant_id, text_grams(lowered))


def bounded_ids(sql: str, params: list, key: str, cap: int) -> list[int] | None:
    """The distinct ids of candidate `sql`, read in one query from a bounded number of
    entries; None when there are more than `cap` (a term too common for the table to
    narrow: reading the list in its own order serves it better). Read into Python rather
    than joined as a subquery, so the list's own query is planned for a known, short
    list of ids (an index scan of the primary key), never for a guess at a gram's
    frequency."""
    bounded = f"SELECT DISTINCT {key} FROM ({sql} LIMIT %s) entries LIMIT %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(bounded, [*params, ENTRIES_READ * (cap + 1), cap + 1])
        ids = [row[0] for row in cursor.fetchall()]
    return ids if len(ids) <= cap else None


# --- The gram table's triggers, for an app's migration ------------------------------------------


@dataclass(frozen=True)
class GramTable:
    """A gram table and what keeps it: `function(columns…)` (SQL, IMMUTABLE, returning
    SETOF text) gives a source row's grams; triggers on `source` keep `table`
    (tenant_id, gram, `key`) true on every path: statement-level with transition tables
    for INSERT and DELETE (one set-based statement for a bulk load), row-level with a
    WHEN clause for UPDATE (only when a gram column, the tenant or the id changes)."""

    table: str  # "leads_searchgram"
    source: str  # "leads_lead"
    key: str  # "lead_id"
    function: str  # "leads_search_grams"
    parameters: str  # the function's arguments, declared: "company text, …"
    body: str  # its SQL
    columns: tuple[str, ...]  # the source's columns it is called with, in order

    def _call(self, row: str) -> str:
        return f"{self.function}({', '.join(f'{row}.{c}' for c in self.columns)})"

    def install_sql(self) -> str:
        t, s, k, name = self.table, self.source, self.key, self.table.replace("gram", "")
        changed = "\n    OR ".join(
            f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in (*self.columns, "tenant_id", "id")
        )
        return f"""
CREATE OR REPLACE FUNCTION {self.function}({self.parameters})
RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ {self.body} $$;

CREATE OR REPLACE FUNCTION {name}_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {t} (tenant_id, gram, {k})
  SELECT n.tenant_id, g, n.id FROM new_rows n CROSS JOIN LATERAL {self._call("n")} g;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {name}_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {t} s USING old_rows o CROSS JOIN LATERAL {self._call("o")} g
  WHERE s.tenant_id = o.tenant_id AND s.gram = g AND s.{k} = o.id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {name}_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {t} s WHERE s.tenant_id = OLD.tenant_id AND s.{k} = OLD.id
    AND s.gram = ANY (ARRAY(SELECT {self._call("OLD")}));
  INSERT INTO {t} (tenant_id, gram, {k})
  SELECT NEW.tenant_id, g, NEW.id FROM {self._call("NEW")} g;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {name}_insert ON {s};
CREATE TRIGGER {name}_insert AFTER INSERT ON {s} REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {name}_insert();
DROP TRIGGER IF EXISTS {name}_delete ON {s};
CREATE TRIGGER {name}_delete AFTER DELETE ON {s} REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {name}_delete();
DROP TRIGGER IF EXISTS {name}_update ON {s};
CREATE TRIGGER {name}_update AFTER UPDATE ON {s}
  FOR EACH ROW WHEN (
    {changed}
  ) EXECUTE FUNCTION {name}_update();
"""  # noqa: S608 — names from a migration

    def uninstall_sql(self) -> str:
        s, name = self.source, self.table.replace("gram", "")
        drops = [f"DROP TRIGGER IF EXISTS {name}_{op} ON {s};" for op in OPS]
        drops += [f"DROP FUNCTION IF EXISTS {name}_{op}();" for op in OPS]
        types = ", ".join(p.split()[-1] for p in self.parameters.split(","))
        return "\n".join([*drops, f"DROP FUNCTION IF EXISTS {self.function}({types});"])

    def backfill_sql(self) -> str:
        """Every existing row's grams, loaded before the primary key is built: 2.1 million
        leads' 54 million grams loaded in 3.2 minutes and keyed in 44 s, where loading
        them through the key took 6 minutes and left it 3.7 GB instead of 2.1 GB."""
        t, k = self.table, self.key
        return f"""
ALTER TABLE {t} DROP CONSTRAINT {t}_pkey;
INSERT INTO {t} (tenant_id, gram, {k})
SELECT r.tenant_id, g, r.id FROM {self.source} r CROSS JOIN LATERAL {self._call("r")} g;
ALTER TABLE {t} ADD CONSTRAINT {t}_pkey PRIMARY KEY (tenant_id, gram, {k});
ANALYZE {t};
"""  # noqa: S608 — names from a migration

    def forward(self, apps, schema_editor) -> None:
        """For RunPython: the function and triggers, then the grams of every tenant's
        rows, read as the owner."""
        from crm.rls import unforce

        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(self.install_sql())
        unforce(schema_editor, self.source)
        schema_editor.execute(self.backfill_sql())

    def backward(self, apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(self.uninstall_sql())


OPS = ("insert", "delete", "update")
