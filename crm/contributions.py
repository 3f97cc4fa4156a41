"""What a higher app adds to a lower app's pages, without the lower app importing it.

Dependencies point one way (crm ← customers ← leads ← opportunities): the customer page
cannot import leads, yet it shows the customer's leads and their trail. The higher app
registers its contributions here in its AppConfig.ready(); the page reads them by the
page's name (a string the lower app chooses, e.g. "customers.customer"). Three kinds:

- Timeline sources, `register_timeline_source(page, key, rows=..., load=...)`: `rows(obj)`
  a queryset of the entries about `obj`, of a model with an `at` field (the page unions
  them with its own entries, sorts by `at` then id, newest first, and pages them in the
  database); `load(ids)` those entries by primary key, objects the page's timeline can
  show (`kind`, `get_kind_display()`, `text`, `at`, `actor`, and `lead_id`/`lead` when
  they belong to a lead).
- Panels, `register_panel(page, panel, key=..., lazy=False, title=..., order=...)`:
  `panel(request, membership, obj)` returns `(template name, context)` to show on the
  page, or None (as home cards do, crm.navigation.register_home_card). A page lists its
  panels by `order` (smaller first; 100 by default), then by registration.
  - An eager panel (the default) is rendered with the page (`panels_for`).
  - A lazy panel (`lazy=True`, with a `title`) is not run with the page: the page shows a
    placeholder card (the title, a skeleton of fixed height) that htmx fills when it
    scrolls into view (`hx-trigger="revealed"`) from the page's panel endpoint, which
    calls `panel(...)` (`lazy_panels`, `lazy_panel`; the customer page serves them at
    `/customers/<uuid>/panels/<key>/`, customers.views_panels). The answer replaces the
    placeholder; None removes it. The endpoint adds `window` (the PanelWindow),
    `panel_url` and `panel_key` to the panel's context. Without JavaScript the
    placeholder's link opens the panel alone.
- Key figures, `register_figure(page, key, label=..., value=..., order=...)`:
  `value(membership)` a query expression of a number about the page's object (its
  primary key is `OuterRef("pk")`), or None when the member may not read it. The page
  reads every figure in one query (`figures_for`).

The "more" and period convention of panels that list rows (`PanelWindow.of(request)`):

- `limit`: how many rows; ROWS (5) by default, `?more=1` for MORE_ROWS (50),
  `?limit=N` for N (1 to MAX_ROWS). A panel reads one row more than it shows to know
  whether there are more (`window.rows(queryset)` → (rows, has_more)).
- `months`: the period the rows fall in; MONTHS (12) by default, `?months=N` (1 to 120),
  `?months=all` for no bound; `window.since` the earliest time (None: no bound).
- Templates include "includes/panel_more.html" (with `has_more`) for the "显示更多" link and
  the period switch; both fetch the panel again with htmx in place.

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
DEFAULT_ORDER = 100


@dataclass(frozen=True)
class PanelSpec:
    """A registered panel: `lazy` ones are fetched by the page when they come into view."""

    key: str
    panel: Panel
    lazy: bool = False
    title: Any = ""  # a lazy panel's placeholder title (a lazy translation)
    order: int = DEFAULT_ORDER


@dataclass(frozen=True)
class Figure:
    key: str
    label: Any
    value: Callable[[Any], Any]  # membership → a query expression (OuterRef("pk")) or None
    order: int = DEFAULT_ORDER


_timeline_sources: dict[str, dict[str, TimelineSource]] = {}
_panels: dict[str, dict[str, PanelSpec]] = {}
_figures: dict[str, dict[str, Figure]] = {}


def register_timeline_source(page: str, key: str, *, rows, load) -> None:
    """Add the entries `rows(obj)` (loaded with `load(ids)`) to `page`'s timeline."""
    _timeline_sources.setdefault(page, {})[key] = TimelineSource(key, rows, load)


def timeline_sources(page: str) -> list[TimelineSource]:
    """The sources contributed to `page`'s timeline, in registration order."""
    return list(_timeline_sources.get(page, {}).values())


def merged_timeline(sources: list[TimelineSource], obj, page, per_page: int, *, since=None):
    """One page of `obj`'s timeline made of `sources` (a page's own and the contributed
    ones), newest first: the sources' (time, id, source) rows united and paged in the
    database, then each source's entries on the page loaded by primary key (`since`: only
    the entries at or after it). A count, the page's rows, and one query per source on the
    page, whatever its size. A Paginator page whose `object_list` holds the entries."""
    from django.core.paginator import Paginator
    from django.db.models import Value

    def rows(source):
        found = source.rows(obj)
        return found if since is None else found.filter(at__gte=since)

    first, *others = [rows(source).values_list("at", "id", Value(source.key)) for source in sources]
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


def register_panel(
    page: str,
    panel: Panel,
    *,
    key: str = "",
    lazy: bool = False,
    title: Any = "",
    order: int = DEFAULT_ORDER,
) -> None:
    """Show `panel(request, membership, obj)`'s template on `page` whenever it returns one
    (`key`: by default the callable's dotted name; `lazy`: fetched when it comes into view,
    under a placeholder headed `title`; `order`: smaller first)."""
    key = key or f"{panel.__module__}.{panel.__qualname__}"
    _panels.setdefault(page, {})[key] = PanelSpec(key, panel, lazy, title or key, order)


def _ordered(page: str) -> list[PanelSpec]:
    return sorted(_panels.get(page, {}).values(), key=lambda spec: spec.order)


def page_panels(page: str) -> list[PanelSpec]:
    """Every panel of `page`, eager and lazy, in their order."""
    return _ordered(page)


def panels_for(page: str, request, membership, obj) -> list[tuple[str, dict]]:
    """(template name, context) of every eager panel of `page` that has something to show."""
    shown = []
    for spec in _ordered(page):
        if spec.lazy:
            continue
        found = spec.panel(request, membership, obj)
        if found is not None:
            shown.append(found)
    return shown


def lazy_panels(page: str) -> list[PanelSpec]:
    """The lazy panels of `page`, in their order."""
    return [spec for spec in _ordered(page) if spec.lazy]


def lazy_panel(page: str, key: str) -> PanelSpec | None:
    """The lazy panel `key` of `page`, or None."""
    spec = _panels.get(page, {}).get(key)
    return spec if spec is not None and spec.lazy else None


def register_figure(
    page: str, key: str, *, label: Any, value: Callable[[Any], Any], order: int = DEFAULT_ORDER
) -> None:
    """Show the number `value(membership)` (a query expression about the page's object,
    `OuterRef("pk")`; None: not for this member) among `page`'s key figures."""
    _figures.setdefault(page, {})[key] = Figure(key, label, value, order)


def count_of(queryset, by: str):
    """A figure's expression: how many rows of `queryset` (filtered on `by`=OuterRef("pk"))
    there are, 0 when none."""
    from django.db.models import Count, IntegerField, OuterRef, Subquery
    from django.db.models.functions import Coalesce

    rows = queryset.filter(**{by: OuterRef("pk")}).order_by().values(by)
    counted = rows.annotate(n=Count("*")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def figures_for(page: str, membership, model, pk) -> list[tuple[str, Any, Any]]:
    """(key, label, value) of `page`'s key figures about the `model` row `pk`, in their
    order: one query, whatever their number."""
    figures = sorted(_figures.get(page, {}).values(), key=lambda f: f.order)
    expressions = {}
    for figure in figures:
        expression = figure.value(membership)
        if expression is not None:
            expressions[figure.key] = expression
    if not expressions:
        return []
    names = {key: f"figure_{n}" for n, key in enumerate(expressions)}
    found = (
        model.objects.filter(pk=pk)
        .annotate(**{names[key]: e for key, e in expressions.items()})
        .values(*names.values())
        .first()
    ) or {}
    return [(f.key, f.label, found.get(names[f.key])) for f in figures if f.key in expressions]


# -- the window of a panel's rows ------------------------------------------------------------

ROWS = 5
MORE_ROWS = 50
MAX_ROWS = 200
MONTHS = 12
MAX_MONTHS = 120


@dataclass(frozen=True)
class PanelWindow:
    """Which rows a panel lists: how many (`limit`) over which period (`months`, None for
    all of them), read from the request (the module's convention)."""

    limit: int = ROWS
    months: int | None = MONTHS
    more: bool = False

    @classmethod
    def of(cls, request) -> PanelWindow:
        query = request.GET
        limit, more = ROWS, False
        if query.get("more") == "1":
            limit, more = MORE_ROWS, True
        raw = query.get("limit", "")
        if raw.isdigit() and int(raw) > 0:
            limit, more = min(int(raw), MAX_ROWS), int(raw) > ROWS
        months: int | None = MONTHS
        raw = query.get("months", "")
        if raw == "all":
            months = None
        elif raw.isdigit() and int(raw) > 0:
            months = min(int(raw), MAX_MONTHS)
        return cls(limit, months, more)

    @property
    def since(self):
        """The earliest time of the period (None: no bound)."""
        if self.months is None:
            return None
        from datetime import timedelta

        from django.utils import timezone

        return timezone.now() - timedelta(days=round(self.months * 365.25 / 12))

    @property
    def months_param(self) -> str:
        return "all" if self.months is None else str(self.months)

    def query(self, **changes) -> str:
        """This window's query string with `changes` (limit, months)."""
        from urllib.parse import urlencode

        params = {"limit": self.limit, "months": self.months_param}
        params.update(changes)
        return urlencode(params)

    @property
    def more_query(self) -> str:
        return self.query(limit=MORE_ROWS if self.limit < MORE_ROWS else MAX_ROWS)

    @property
    def all_query(self) -> str:
        return self.query(months="all")

    @property
    def default_period_query(self) -> str:
        return self.query(months=MONTHS)

    @property
    def can_grow(self) -> bool:
        return self.limit < MAX_ROWS

    def rows(self, queryset) -> tuple[list, bool]:
        """Up to `limit` rows of `queryset` (already in its order) and whether there are
        more: one query."""
        found = list(queryset[: self.limit + 1])
        return found[: self.limit], len(found) > self.limit
