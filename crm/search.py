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

from django.db import connection

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
