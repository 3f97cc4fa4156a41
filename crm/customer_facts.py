"""Per-customer facts an app contributes as SQL, for the scores computed over customers
(customer health) without the scoring app importing the app that has the rows.

A fact source is a SELECT that yields `(customer_id, at, value)` rows of the current
tenant; `%(tenant)s` is the tenant's id. The facts in use:

- ``ticket_resolved`` (service feedback): one row per resolved ticket, `at` when it was
  resolved, `value` 1 when within the tenant's resolution target, else 0;
- ``order_won`` (opportunities): one row per won opportunity, `at` when it was won.

An app registers its sources from its AppConfig.ready(); a fact nobody registers has no
rows (the dimension that needs it has no data).
"""

from __future__ import annotations

from dataclasses import dataclass

TICKET_RESOLVED = "ticket_resolved"
ORDER_WON = "order_won"


@dataclass(frozen=True)
class FactSource:
    key: str
    sql: str  # SELECT customer_id, at, value … WHERE tenant_id = %(tenant)s


_sources: dict[str, FactSource] = {}

# What a fact is when no app provides it: no rows, of the right types.
EMPTY = (
    "SELECT NULL::bigint AS customer_id, NULL::timestamptz AS at, NULL::int AS value WHERE false"
)


def register(key: str, sql: str) -> None:
    _sources[key] = FactSource(key, sql)


def sql_for(key: str) -> str:
    """The fact's SELECT (its registered source, else no rows)."""
    source = _sources.get(key)
    return source.sql if source is not None else EMPTY


def registered() -> list[str]:
    return sorted(_sources)
