"""What a higher app adds to a lower app's pages, without the lower app importing it.

Dependencies point one way (crm ← customers ← leads ← opportunities): the customer page
cannot import leads, yet it shows the customer's leads and their trail. The higher app
registers its contributions here in its AppConfig.ready(); the page reads them by the
page's name (a string the lower app chooses, e.g. "customers.customer"). Two kinds:

- Timeline sources, `register_timeline_source(page, key, rows=..., load=...)`: `rows(obj)`
  a queryset of the entries about `obj`, of a model with an `at` field (the page unions
  them with its own entries, sorts by `at` then id, newest first, and pages them in the
  database); `load(ids)` those entries by primary key, objects the page's timeline can
  show (`kind`, `get_kind_display()`, `text`, `at`, `actor`, and `lead_id`/`lead` when
  they belong to a lead).
- Panels, `register_panel(page, panel)`: `panel(request, membership, obj)` returns
  `(template name, context)` to show on the page, or None (as home cards do,
  crm.navigation.register_home_card).

Registering the same key again replaces the earlier contribution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TimelineSource:
    key: str
    rows: Callable[[Any], Any]  # obj → a queryset of entries with `at`
    load: Callable[[list[int]], Iterable[Any]]  # primary keys → entries


Panel = Callable[[Any, Any, Any], "tuple[str, dict] | None"]

_timeline_sources: dict[str, dict[str, TimelineSource]] = {}
_panels: dict[str, dict[str, Panel]] = {}


def register_timeline_source(page: str, key: str, *, rows, load) -> None:
    """Add the entries `rows(obj)` (loaded with `load(ids)`) to `page`'s timeline."""
    _timeline_sources.setdefault(page, {})[key] = TimelineSource(key, rows, load)


def timeline_sources(page: str) -> list[TimelineSource]:
    """The sources contributed to `page`'s timeline, in registration order."""
    return list(_timeline_sources.get(page, {}).values())


def merged_timeline(sources: list[TimelineSource], obj, page, per_page: int):
    """One page of `obj`'s timeline made of `sources` (a page's own and the contributed
    ones), newest first: the sources' (time, id, source) rows united and paged in the
    database, then each source's entries on the page loaded by primary key. A count, the
    page's rows, and one query per source on the page, whatever its size. A Paginator page
    whose `object_list` holds the entries."""
    from django.core.paginator import Paginator
    from django.db.models import Value

    first, *others = [
        source.rows(obj).values_list("at", "id", Value(source.key)) for source in sources
    ]
    rows = first.union(*others, all=True) if others else first
    timeline = Paginator(rows.order_by("-at", "-id"), per_page).get_page(page)
    ids: dict[str, list[int]] = {source.key: [] for source in sources}
    for _at, pk, key in timeline.object_list:
        ids[key].append(pk)
    found = {}
    for source in sources:
        if ids[source.key]:
            for entry in source.load(ids[source.key]):
                found[source.key, entry.pk] = entry
    timeline.object_list = [found[key, pk] for _at, pk, key in timeline.object_list]
    return timeline


def register_panel(page: str, panel: Panel, *, key: str = "") -> None:
    """Show `panel(request, membership, obj)`'s template on `page` whenever it returns one
    (`key`: by default the callable's dotted name)."""
    _panels.setdefault(page, {})[key or f"{panel.__module__}.{panel.__qualname__}"] = panel


def panels_for(page: str, request, membership, obj) -> list[tuple[str, dict]]:
    """(template name, context) of every panel of `page` that has something to show."""
    shown = []
    for panel in _panels.get(page, {}).values():
        found = panel(request, membership, obj)
        if found is not None:
            shown.append(found)
    return shown
