"""The CRM health self-test (F40): brief 001's ten indicators, each passed or failed by
the tenant's own rows, and a score out of 10. docs/selftest.md defines every indicator.

A registry, as crm.metrics is for figures: each app registers the indicators whose data
it owns in its AppConfig.ready(); the kernel never imports the apps.

    from crm.selftest import Indicator, register_indicator, share_result, window

    register_indicator(
        Indicator(
            key="assignment",
            position=1,
            label=_("Leads assigned within 2 h"),
            target=_("≥ 95 %"),
            threshold=0.95,
            higher_is_better=True,
            inclusive=True,
            compute=assignment,  # (tenant, today) -> Result
            definition=_("Of the leads created in the last 30 days, the share …"),
            advice=_("Switch the assignment rules from round robin to …"),
            no_data=_("No lead was created in the last 30 days."),
        )
    )

- `compute(tenant, today)` runs inside the tenant's context on the reports alias (the
  page opens `crm.metrics.reading(tenant)`), `today` being the tenant's local day. It
  returns a `Result`: the indicator's value (a share 0–1, or a count with `unit`
  COUNT), or None when the tenant has no such data ("暂无数据": neither a pass nor a
  fail, and left out of the score); and the keys of the registered metrics (group
  "selftest") its numbers come from: the numerator's, the denominator's and the
  failing rows' (the records that keep the indicator from passing), with the local days
  [start, end] they were counted over. `share_result()` and `count_result()` build one
  from three metrics in one query.
- A failing indicator names the owners of its failing rows (`owners_of`: the failing
  metric's figure per REP, most first) and says what to do (`advice`).
- The score: one point per passing indicator among those with data, scaled to 10:
  passing ÷ with data × 10, rounded half up to one decimal (`score()`); no score when no
  indicator has data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, FloatField, Func
from django.db.models import Value as V
from django.utils.translation import gettext_lazy

from crm import metrics as metric_registry
from crm.metrics import REP, drill_url, get_metric, reports_alias, values_by, values_of
from crm.models import Membership, Tenant

# The indicators' own figures: metrics of group GROUP, listed under SECTION, keyed
# "selftest.<name>" (registered by the apps that own their rows, `register_metric`).
GROUP = "selftest"
SECTION = gettext_lazy("CRM health self-test")


def register_metric(key: str, label, definition, rows, **fields) -> None:
    """Register the self-test figure `selftest.<key>` in the kernel's metric registry."""
    metric_registry.register_metric(
        metric_registry.Metric(
            key=f"selftest.{key}",
            label=label,
            definition=definition,
            rows=rows,
            section=SECTION,
            group=GROUP,
            **fields,
        )
    )


SHARE = "share"  # a value from 0 to 1, shown as a percentage
COUNT = "count"  # a whole number

PASSED = "pass"
FAILED = "fail"
NO_DATA = "no_data"

# How many owners a failing indicator names.
TOP_OWNERS = 3
# The window of the indicators that count the recent past: the 30 local days before today.
WINDOW_DAYS = 30


@dataclass(frozen=True)
class Result:
    value: float | None  # None: the tenant has no such data
    numerator: str  # metric keys
    denominator: str
    failing: str
    start: date  # the local days the metrics are counted over
    end: date
    numerator_value: Any = None
    denominator_value: Any = None
    failing_value: Any = None


@dataclass(frozen=True)
class Indicator:
    key: str
    position: int  # 1–10: the brief's order
    label: Any  # lazy
    target: Any  # lazy: the target as people read it, "≥ 95 %"
    threshold: float  # a share (0–1) or a count
    higher_is_better: bool
    compute: Callable[[Tenant, date], Result] = field(compare=False)
    inclusive: bool = True  # whether reaching the threshold exactly passes
    unit: str = SHARE
    definition: Any = ""  # lazy: what exactly is counted, one or two sentences
    advice: Any = ""  # lazy: what to do when it fails
    no_data: Any = ""  # lazy: why there is no data, when there is none

    def passes(self, value: float) -> bool:
        if self.higher_is_better:
            return value >= self.threshold if self.inclusive else value > self.threshold
        return value <= self.threshold if self.inclusive else value < self.threshold


_registry: dict[str, Indicator] = {}


def register_indicator(indicator: Indicator) -> None:
    """Make an indicator known (from an AppConfig.ready()); registering a key again
    replaces it."""
    _registry[indicator.key] = indicator


def indicators() -> list[Indicator]:
    return sorted(_registry.values(), key=lambda i: (i.position, i.key))


def get_indicator(key: str) -> Indicator | None:
    return _registry.get(key)


# --- Building results ----------------------------------------------------------------------


def window(today: date, days: int = WINDOW_DAYS) -> tuple[date, date]:
    """The `days` local days before `today` (today, still under way, left out)."""
    return today - timedelta(days=days), today - timedelta(days=1)


def elapsed(since, until, unit: timedelta):
    """The time from `since` to `until` in `unit`s, a float (NULL when either is NULL).
    Each is a field path, an expression or an aware datetime."""

    def expression(x):
        if isinstance(x, str):
            return F(x)
        if isinstance(x, datetime):
            return V(x, output_field=DateTimeField())
        return x

    span = ExpressionWrapper(expression(until) - expression(since), output_field=DurationField())
    return Func(
        span,
        template=f"(EXTRACT(EPOCH FROM %(expressions)s) / {unit.total_seconds()})::float8",
        output_field=FloatField(),
    )


def figures(tenant: Tenant, start: date, end: date, *keys: str) -> dict[str, Any]:
    """The figures of the metrics `keys` over [start, end], on the reports alias (one
    query per family of metrics sharing their rows)."""
    found = [_metric(key) for key in keys]
    return values_of(found, tenant=tenant, start=start, end=end, using=reports_alias())


def _metric(key: str):
    metric = get_metric(key)
    if metric is None:
        raise LookupError(f"self-test: no metric {key!r} is registered")
    return metric


def share_result(
    tenant: Tenant, start: date, end: date, *, numerator: str, denominator: str, failing: str
) -> Result:
    """A share: the numerator's figure over the denominator's (None when that is 0)."""
    found = figures(tenant, start, end, numerator, denominator, failing)
    top, bottom = found[numerator], found[denominator]
    return Result(
        value=float(top) / float(bottom) if bottom else None,
        numerator=numerator,
        denominator=denominator,
        failing=failing,
        start=start,
        end=end,
        numerator_value=top,
        denominator_value=bottom,
        failing_value=found[failing],
    )


def count_result(
    tenant: Tenant, start: date, end: date, *, numerator: str, denominator: str, failing: str
) -> Result:
    """A count: the numerator's figure, when the denominator (what could have been
    counted) has any rows; None otherwise."""
    found = figures(tenant, start, end, numerator, denominator, failing)
    return Result(
        value=found[numerator] if found[denominator] else None,
        numerator=numerator,
        denominator=denominator,
        failing=failing,
        start=start,
        end=end,
        numerator_value=found[numerator],
        denominator_value=found[denominator],
        failing_value=found[failing],
    )


# --- Evaluating ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    membership: Membership | None  # None: rows without an owner
    count: Any
    result: Result

    @property
    def url(self) -> str:
        """The failing rows of this owner."""
        rep = self.membership.pk if self.membership is not None else ""
        return drill_url(self.result.failing, self.result.start, self.result.end, {REP: rep})


@dataclass
class Outcome:
    indicator: Indicator
    result: Result
    status: str  # PASSED, FAILED or NO_DATA
    owners: list[Owner] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return self.status != NO_DATA

    def _url(self, key: str, filters=None) -> str:
        return drill_url(key, self.result.start, self.result.end, filters)

    @property
    def numerator_url(self) -> str:
        return self._url(self.result.numerator)

    @property
    def denominator_url(self) -> str:
        return self._url(self.result.denominator)

    @property
    def failing_url(self) -> str:
        return self._url(self.result.failing)

    @property
    def percent(self) -> float | None:
        """A share's value in percent, to one decimal."""
        if self.result.value is None or self.indicator.unit != SHARE:
            return None
        return float(_round(Decimal(str(self.result.value)) * 100))


def _round(number: Decimal) -> Decimal:
    return number.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def owners_of(tenant: Tenant, result: Result, limit: int = TOP_OWNERS) -> list[Owner]:
    """The owners of the failing rows (the failing metric's figure per REP), most first,
    ties by name; rows without an owner are one entry (membership None)."""
    metric = _metric(result.failing)
    if metric.dimension(REP) is None:
        return []
    per_rep = values_by(
        [metric], REP, tenant=tenant, start=result.start, end=result.end, using=reports_alias()
    )
    counts = {rep: found[metric.key] for rep, found in per_rep.items() if found[metric.key]}
    ids = [rep for rep in counts if rep != ""]
    members = {
        m.pk: m
        for m in Membership.objects.using(reports_alias())
        .filter(tenant=tenant, pk__in=ids)
        .select_related("user")
    }

    def name(rep) -> str:
        member = members.get(rep)
        return member.display_name if member is not None else ""

    ranked = sorted(counts, key=lambda rep: (-counts[rep], rep == "", name(rep)))
    return [
        Owner(membership=members.get(rep), count=counts[rep], result=result)
        for rep in ranked[:limit]
    ]


def evaluate(indicator: Indicator, tenant: Tenant, today: date) -> Outcome:
    """The indicator for `tenant` on its local day `today`: its result, pass, fail or no
    data, and the owners of its failing rows when it fails."""
    result = indicator.compute(tenant, today)
    if result.value is None:
        return Outcome(indicator, result, NO_DATA)
    if indicator.passes(result.value):
        return Outcome(indicator, result, PASSED)
    return Outcome(indicator, result, FAILED, owners_of(tenant, result))


def run(tenant: Tenant, today: date) -> list[Outcome]:
    """Every registered indicator, in order."""
    return [evaluate(indicator, tenant, today) for indicator in indicators()]


def score(outcomes: list[Outcome]) -> Decimal | None:
    """One point per passing indicator among those with data, scaled to 10: passing ÷
    with data × 10, rounded half up to one decimal. None when none has data."""
    with_data = [o for o in outcomes if o.has_data]
    if not with_data:
        return None
    passing = sum(1 for o in with_data if o.status == PASSED)
    return _round(Decimal(passing) * 10 / Decimal(len(with_data)))
