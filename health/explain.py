"""The explanation of a customer's health score (F31, issue item 4), pure: no database.

From a day's snapshot (`Snap`: its values, scores and the weights it was computed with)
and the tenant's bands:

- `explain(snap, bands)`: each dimension's value with its unit, the band it fell in
  ("≤ 14 天 → 85"), its score, its weight and its contribution to the overall score,
  weight × score ÷ the weights of the dimensions with data (the dimensions without data
  or without weight are not counted). The contributions sum to the weighted mean, which
  rounds half up to the score.
- `change(before, after)`: the score then and now ("72 → 58") and the dimension whose
  contribution moved most ("距上次互动 5 → 19 天, −9"), each snapshot read with its own
  weights; whether the coverage or the weights changed between them.
- `trend(rows, first, last)`: the score of every day from `first` to `last`, None where
  there is none (the chart shows a gap).

health.panels reads the snapshots (one query) and renders these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from django.utils.translation import gettext as _

from health.compute import DIMENSIONS, band_score, overall, weighted_dimensions
from health.models import LOWER_IS_BETTER, UNITS, Dimension

# The snapshot columns an explanation reads.
SNAPSHOT_FIELDS: tuple[str, ...] = (
    "day",
    "score",
    "coverage",
    "weights",
    *(f"{d}_{part}" for d in DIMENSIONS for part in ("value", "score")),
)
MINUS = "\u2212"  # the minus sign, not a hyphen


@dataclass(frozen=True)
class Snap:
    """A customer's health on a day: what a snapshot stores."""

    day: date
    score: int | None
    coverage: int
    weights: Mapping[str, int]
    values: Mapping[str, float | None]
    scores: Mapping[str, int | None]

    @classmethod
    def from_row(cls, row: Mapping, default_weights: Mapping[str, int] | None = None) -> Snap:
        """From a snapshot's columns (`SNAPSHOT_FIELDS`). A snapshot without its weights
        is read with `default_weights` (the tenant's current ones)."""
        weights = row.get("weights") or default_weights or {}
        return cls(
            day=row["day"],
            score=row["score"],
            coverage=row["coverage"] or 0,
            weights={d: int(weights.get(d, 0) or 0) for d in DIMENSIONS},
            values={d: row.get(f"{d}_value") for d in DIMENSIONS},
            scores={d: row.get(f"{d}_score") for d in DIMENSIONS},
        )

    @classmethod
    def from_computed(cls, day: date, row: Mapping, weights: Mapping[str, int]) -> Snap:
        """From health.compute.values_for's row (computed now, not written)."""
        scores = {d: row.get(f"{d}_score") for d in DIMENSIONS}
        score, coverage = overall(scores, dict(weights))
        return cls(
            day=day,
            score=score,
            coverage=coverage,
            weights={d: int(weights.get(d, 0)) for d in DIMENSIONS},
            values={d: row.get(d) for d in DIMENSIONS},
            scores=scores,
        )

    def counted(self, dimension: str) -> bool:
        """Whether the dimension counts in the score: it has data and a weight."""
        return self.scores.get(dimension) is not None and self.weights.get(dimension, 0) > 0

    @property
    def denominator(self) -> int:
        """The weights of the dimensions that count."""
        return sum(self.weights[d] for d in DIMENSIONS if self.counted(d))

    @property
    def weighted(self) -> int:
        """How many dimensions have a weight: the coverage's "of"."""
        return weighted_dimensions(dict(self.weights))

    def contribution(self, dimension: str) -> Fraction:
        """weight × score ÷ the weights of the dimensions that count (0 when it does not)."""
        if not self.counted(dimension):
            return Fraction(0)
        return Fraction(self.weights[dimension] * self.scores[dimension], self.denominator)

    def mean(self) -> Fraction | None:
        """The exact weighted mean the score rounds (None when nothing counts)."""
        if self.denominator == 0:
            return None
        return sum((self.contribution(d) for d in DIMENSIONS), Fraction(0))


# -- formatting -------------------------------------------------------------------------------


def number(value) -> str:
    """A value as people read it: whole numbers without decimals, others to one place."""
    if value is None:
        return ""
    rounded = round(float(value), 1)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.1f}"


def unit(dimension: str) -> str:
    return str(UNITS[Dimension(dimension)])


def with_unit(dimension: str, value) -> str:
    """ "19 天", "93.3%"; "暂无数据" for no data."""
    if value is None:
        return str(_("No data yet"))
    shown, u = number(value), unit(dimension)
    return f"{shown}{u}" if u == "%" else f"{shown} {u}"


def signed(value: Fraction | float) -> str:
    """ "+3", "−9"; to one place under 1 ("−0.4"); "0" for none."""
    value = float(value)
    if abs(value) < 0.05:
        return "0"
    shown = number(abs(value)) if abs(value) < 1 else str(int(abs(value) + 0.5))
    return ("+" if value > 0 else MINUS) + shown


def label(dimension: str) -> str:
    return str(Dimension(dimension).label)


# -- one day ----------------------------------------------------------------------------------


def band_text(dimension: str, value, score: int | None, bands: Mapping[str, dict]) -> str:
    """The band `value` fell in by the tenant's bands, "≤ 14 天 → 85" ("" for no data, or
    when the bands give another score than the snapshot's: they changed since)."""
    if value is None or score is None:
        return ""
    if band_score(dimension, value, bands) != score:
        return ""
    spec = bands[dimension]
    lower_better = dimension in LOWER_IS_BETTER
    for threshold, band in spec["bands"]:
        if (value <= threshold) if lower_better else (value >= threshold):
            sign = "≤" if lower_better else "≥"
            return f"{sign} {with_unit(dimension, threshold)} → {int(band)}"
    last = spec["bands"][-1][0]
    sign = ">" if lower_better else "<"
    return f"{sign} {with_unit(dimension, last)} → {int(spec['else'])}"


@dataclass(frozen=True)
class Line:
    """One dimension's row of the explanation."""

    dimension: str
    label: str
    value: float | None
    value_text: str
    band: str
    bands_changed: bool  # the tenant's bands now give another score for this value
    score: int | None
    weight: int
    counted: bool
    contribution: Fraction  # 0 when not counted

    @property
    def contribution_text(self) -> str:
        return number(self.contribution) if self.counted else ""


@dataclass(frozen=True)
class Explanation:
    snap: Snap
    lines: list[Line]
    live: bool = False  # computed now, not a stored snapshot

    @property
    def score(self) -> int | None:
        return self.snap.score

    @property
    def mean(self) -> Fraction | None:
        return self.snap.mean()

    @property
    def mean_text(self) -> str:
        mean = self.mean
        return "" if mean is None else number(mean)

    @property
    def coverage(self) -> int:
        return self.snap.coverage

    @property
    def weighted(self) -> int:
        return self.snap.weighted

    @property
    def denominator(self) -> int:
        return self.snap.denominator


def explain(snap: Snap, bands: Mapping[str, dict], *, live: bool = False) -> Explanation:
    """Every dimension of `snap`: value, band, score, weight and contribution."""
    lines = []
    for d in DIMENSIONS:
        value, score = snap.values.get(d), snap.scores.get(d)
        text = band_text(d, value, score, bands)
        lines.append(
            Line(
                dimension=d,
                label=label(d),
                value=value,
                value_text=with_unit(d, value),
                band=text,
                bands_changed=score is not None and value is not None and not text,
                score=score,
                weight=snap.weights.get(d, 0),
                counted=snap.counted(d),
                contribution=snap.contribution(d),
            )
        )
    return Explanation(snap=snap, lines=lines, live=live)


# -- a change ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mover:
    """The dimension whose contribution moved most between two snapshots."""

    dimension: str
    before: float | None
    after: float | None
    delta: Fraction  # its contribution after − before

    @property
    def text(self) -> str:
        """ "距上次互动 5 → 19 天, −9"."""
        d = self.dimension
        if self.before is not None and self.after is not None:
            values = f"{number(self.before)} → {with_unit(d, self.after)}"
        else:
            values = f"{with_unit(d, self.before)} → {with_unit(d, self.after)}"
        return f"{label(d)} {values}, {signed(self.delta)}"


@dataclass(frozen=True)
class Change:
    before: Snap | None  # None: no earlier snapshot
    after: Snap
    mover: Mover | None = None
    coverage_changed: bool = False
    weights_changed: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def delta(self) -> int | None:
        if self.before is None or self.before.score is None or self.after.score is None:
            return None
        return self.after.score - self.before.score

    @property
    def scores_text(self) -> str:
        """ "72 → 58" ("暂无数据" for a side without a score)."""
        if self.before is None:
            return ""

        def shown(s: Snap) -> str:
            return str(s.score) if s.score is not None else str(_("No data yet"))

        return f"{shown(self.before)} → {shown(self.after)}"

    @property
    def weights_text(self) -> str:
        """ "距上次互动 25 → 30, …" for the weights that changed."""
        return ", ".join(f"{label(d)} {a} → {b}" for d, a, b in self.weights_changed)


def change(before: Snap | None, after: Snap) -> Change:
    """What moved `after`'s score since `before`: the contribution of each dimension in
    each snapshot with its own weights; the one whose contribution changed most (ties:
    the first in order); None when nothing moved."""
    if before is None:
        return Change(before=None, after=after)
    best: Mover | None = None
    for d in DIMENSIONS:
        delta = after.contribution(d) - before.contribution(d)
        if delta != 0 and (best is None or abs(delta) > abs(best.delta)):
            best = Mover(d, before.values.get(d), after.values.get(d), delta)
    weights = [
        (d, before.weights.get(d, 0), after.weights.get(d, 0))
        for d in DIMENSIONS
        if before.weights.get(d, 0) != after.weights.get(d, 0)
    ]
    return Change(
        before=before,
        after=after,
        mover=best,
        coverage_changed=(before.coverage, before.weighted) != (after.coverage, after.weighted),
        weights_changed=weights,
    )


def on_or_before(snaps: Iterable[Snap], day: date) -> Snap | None:
    """The latest of `snaps` on `day` or before it."""
    found = None
    for snap in snaps:
        if snap.day <= day and (found is None or snap.day > found.day):
            found = snap
    return found


# -- the trend --------------------------------------------------------------------------------


def trend(snaps: Iterable[Snap], first: date, last: date) -> list[tuple[date, int | None]]:
    """(day, score) for every day from `first` to `last`: None where there is no snapshot
    or no score."""
    by_day = {s.day: s.score for s in snaps}
    days = (last - first).days + 1
    return [(first + timedelta(days=i), by_day.get(first + timedelta(days=i))) for i in range(days)]
