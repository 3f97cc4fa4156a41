"""The explanation of a health score on hand-built snapshots (health.explain, pure): the
contributions sum to the score, the band each value fell in, and what moved the score
between two days: no earlier snapshot, coverage changed, re-weighting, a dimension losing
its data."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from django.utils import translation

from health import compute, explain
from health.models import DEFAULT_BANDS, DEFAULT_WEIGHTS

DAY = date(2026, 11, 30)
BANDS = {str(k): v for k, v in DEFAULT_BANDS.items()}
WEIGHTS = {str(k): v for k, v in DEFAULT_WEIGHTS.items()}  # 25 20 20 10 15 10


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def snap(day=DAY, weights=None, **dims) -> explain.Snap:
    """A snapshot as the recompute writes it: `recency=(19, 65)` is a value and its score;
    the overall score and coverage by health.compute.overall."""
    weights = weights or WEIGHTS
    row = {"day": day, "weights": weights}
    for d in compute.DIMENSIONS:
        value, score = dims.get(d, (None, None))
        row[f"{d}_value"], row[f"{d}_score"] = value, score
    scores = {d: row[f"{d}_score"] for d in compute.DIMENSIONS}
    row["score"], row["coverage"] = compute.overall(scores, weights)
    return explain.Snap.from_row(row)


FULL = {
    "recency": (5, 100),
    "frequency": (7, 80),
    "service": (90, 80),
    "downloads": (2, 60),
    "quotes": (40, 50),
    "competitor": (1, 70),
}


def test_the_contributions_sum_to_the_score():
    s = snap(**FULL)
    # (25·100 + 20·80 + 20·80 + 10·60 + 15·50 + 10·70) / 100 = 77.5 → 78 (half up)
    assert (s.score, s.coverage) == (78, 6)
    found = explain.explain(s, BANDS)
    assert found.mean == Fraction(155, 2)
    assert sum(line.contribution for line in found.lines) == found.mean
    assert [line.contribution_text for line in found.lines] == ["25", "16", "16", "6", "7.5", "7"]
    assert found.mean_text == "77.5" and found.score == 78


def test_the_weights_are_spread_over_the_dimensions_with_data():
    s = snap(recency=(19, 65), frequency=(3, 60), quotes=(40, 50))
    # (25·65 + 20·60 + 15·50) / 60 = 59.58 → 60, over 3 of 6
    assert (s.score, s.coverage, s.denominator, s.weighted) == (60, 3, 60, 6)
    found = explain.explain(s, BANDS)
    by = {line.dimension: line for line in found.lines}
    assert by["recency"].contribution == Fraction(25 * 65, 60)
    assert by["recency"].contribution_text == "27.1"
    assert not by["service"].counted and by["service"].contribution == 0
    assert by["service"].value_text == "No data yet" and by["service"].contribution_text == ""
    assert abs(float(sum(line.contribution for line in found.lines)) - found.score) <= 0.5


def test_a_customer_without_data_has_no_score_never_a_zero():
    s = snap()
    assert (s.score, s.coverage) == (None, 0)
    found = explain.explain(s, BANDS)
    assert found.mean is None and found.mean_text == ""
    assert not any(line.counted for line in found.lines)
    assert {line.value_text for line in found.lines} == {"No data yet"}


@pytest.mark.parametrize(
    ("dimension", "value", "score", "band"),
    [
        ("recency", 12, 85, "≤ 14 days → 85"),
        ("recency", 7, 100, "≤ 7 days → 100"),
        ("recency", 120, 0, "> 90 days → 0"),
        ("frequency", 7, 80, "≥ 6 interactions → 80"),
        ("frequency", 0, 10, "< 1 interactions → 10"),
        ("service", 93.3333, 80, "≥ 85% → 80"),
        ("competitor", 0, 100, "≤ 0 searches → 100"),
        ("quotes", 62.5, 75, "≥ 50% → 75"),
    ],
)
def test_the_band_each_value_fell_in(dimension, value, score, band):
    assert explain.band_text(dimension, value, score, BANDS) == band


def test_a_band_the_settings_no_longer_give_is_not_invented():
    # Scored 85 for 12 days; the tenant's bands now say 12 days → 100.
    bands = {**BANDS, "recency": {"bands": [[14, 100]], "else": 0}}
    assert explain.band_text("recency", 12, 85, bands) == ""
    line = explain.explain(snap(recency=(12, 85)), bands).lines[0]
    assert line.bands_changed and line.band == ""


def test_values_with_their_units():
    assert explain.with_unit("recency", 19.0) == "19 days"
    assert explain.with_unit("service", 93.33333) == "93.3%"
    assert explain.with_unit("downloads", 0) == "0 downloads"
    assert explain.with_unit("competitor", None) == "No data yet"


def test_no_earlier_snapshot():
    now = snap(**FULL)
    found = explain.change(None, now)
    assert found.before is None and found.mover is None and found.delta is None
    assert found.scores_text == ""
    assert explain.on_or_before([now], DAY - timedelta(days=1)) is None


def test_the_dimension_that_moved_the_score_most():
    before = snap(day=DAY - timedelta(days=1), **{**FULL, "recency": (5, 100)})
    after = snap(**{**FULL, "recency": (19, 65), "quotes": (30, 50)})
    found = explain.change(before, after)
    # recency 100 → 65 at weight 25 of 100: −8.75; nothing else moved
    assert (before.score, after.score, found.delta) == (78, 69, -9)
    assert found.scores_text == "78 → 69"
    assert found.mover.dimension == "recency"
    assert found.mover.delta == Fraction(-35, 4)
    assert found.mover.text == "Days since last interaction 5 → 19 days, \u22129"
    assert not found.coverage_changed and found.weights_changed == []
    # the sum of every dimension's contribution change is the change of the mean
    assert (
        sum(after.contribution(d) - before.contribution(d) for d in compute.DIMENSIONS)
        == after.mean() - before.mean()
    )


def test_coverage_changed():
    before = snap(day=DAY - timedelta(days=30), recency=(5, 100), frequency=(7, 80))
    after = snap(recency=(5, 100), frequency=(7, 80), service=(40, 15))
    found = explain.change(before, after)
    # (25·100 + 20·80)/45 = 91.1 → 91; with service 15 at 20: 4400/65... = 67.7 → 68
    assert (before.score, after.score) == (91, 68)
    assert found.coverage_changed
    assert (before.coverage, after.coverage) == (2, 3)
    # service came in at 20·15/65 = 4.6, but the others lost more by the re-spreading:
    # recency 55.6 → 38.5 (−17.1)
    assert found.mover.dimension == "recency"
    assert found.mover.text.endswith(", \u221217")
    assert found.mover.text.startswith("Days since last interaction 5 → 5 days")


def test_re_weighting_between_the_snapshots_is_said():
    before = snap(day=DAY - timedelta(days=1), **FULL)
    weights = {**WEIGHTS, "recency": 40, "downloads": 0, "competitor": 5}
    after = snap(weights=weights, **FULL)
    found = explain.change(before, after)
    assert found.weights_changed == [
        ("recency", 25, 40),
        ("downloads", 10, 0),
        ("competitor", 10, 5),
    ]
    assert found.weights_text == (
        "Days since last interaction 25 → 40, Document downloads in 90 days 10 → 0, "
        "Competitor searches in 90 days 10 → 5"
    )
    # downloads at weight 0 no longer counts: 5 of 5 dimensions with a weight
    assert (after.coverage, after.weighted) == (5, 5)
    assert found.coverage_changed
    # recency (100) gains most: 25 → 40·100/100 = 40 (+15)
    assert (before.score, after.score) == (78, 83)
    assert found.mover.dimension == "recency" and found.mover.text.endswith(", +15")


def test_a_dimension_losing_its_data():
    before = snap(day=DAY - timedelta(days=1), recency=(5, 100), competitor=(4, 40))
    after = snap(recency=(6, 100))
    found = explain.change(before, after)
    # (25·100 + 10·40)/35 = 82.9 → 83; then 100 alone
    assert (before.score, after.score, found.delta) == (83, 100, 17)
    assert found.coverage_changed
    # recency 71.4 → 100 (+28.6) moved more than competitor's 11.4 → gone
    assert found.mover.dimension == "recency"
    lost = after.contribution("competitor") - before.contribution("competitor")
    assert lost == Fraction(-400, 35)
    # Alone, the lost dimension is the mover, said with its lost value.
    # (25·20 + 10·100)/35 = 42.9 → 43; then 20: recency 14.3 → 20, competitor 28.6 → gone
    before = snap(day=DAY - timedelta(days=1), recency=(70, 20), competitor=(0, 100))
    found = explain.change(before, snap(recency=(71, 20)))
    assert found.delta == -23 and found.mover.dimension == "competitor"
    assert found.mover.text == "Competitor searches in 90 days 0 searches → No data yet, \u221229"


def test_a_score_that_goes_to_no_data():
    before = snap(day=DAY - timedelta(days=1), recency=(5, 100))
    found = explain.change(before, snap())
    assert found.delta is None and found.scores_text == "100 → No data yet"
    assert found.mover.dimension == "recency" and found.mover.delta == -100


def test_nothing_moved():
    found = explain.change(snap(day=DAY - timedelta(days=1), **FULL), snap(**FULL))
    assert found.delta == 0 and found.mover is None


def test_the_comparison_takes_the_latest_snapshot_on_or_before_the_day():
    snaps = [snap(day=DAY - timedelta(days=n), **FULL) for n in (40, 31, 3)]
    assert explain.on_or_before(snaps, DAY - timedelta(days=30)).day == DAY - timedelta(days=31)
    assert explain.on_or_before(snaps, DAY - timedelta(days=1)).day == DAY - timedelta(days=3)


def test_the_trend_has_gaps_where_there_is_no_score():
    snaps = [
        snap(day=DAY - timedelta(days=2), **FULL),
        snap(day=DAY - timedelta(days=1)),
        snap(**FULL),
    ]
    points = explain.trend(snaps, DAY - timedelta(days=3), DAY)
    assert points == [
        (DAY - timedelta(days=3), None),  # no snapshot
        (DAY - timedelta(days=2), 78),
        (DAY - timedelta(days=1), None),  # a snapshot without a score
        (DAY, 78),
    ]


def test_signed_figures():
    assert explain.signed(Fraction(-35, 4)) == "\u22129"
    assert explain.signed(Fraction(2, 5)) == "+0.4"
    assert explain.signed(0) == "0"
    assert explain.signed(12.5) == "+13"
