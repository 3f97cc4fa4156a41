"""The CRM health self-test (crm.selftest, /reports/self-test/): the registry of the ten
indicators, the pass rule at the edges, the score, and the page: who may open it, the
score and the list it shows, the links from a figure to its rows and from a failing
indicator to its failing rows and their owners, and another tenant's rows never counted.

Each indicator's own pass and fail tests are in its app's tests (tests/<app>/test_selftest.py).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import metrics, selftest
from crm.models import Role
from crm.selftest import Indicator, Outcome, Result
from tests.crm.selftest_helpers import customer, interaction, local
from tests.factories import MembershipFactory
from tests.leads.factories import make_lead

pytestmark = pytest.mark.django_db

PAGE = "/reports/self-test/"


# -- the registry ------------------------------------------------------------------------------


def test_the_ten_indicators_are_registered_in_the_briefs_order():
    found = selftest.indicators()
    assert [i.key for i in found] == [
        "assignment",
        "stage_lag",
        "freshness",
        "daily_active",
        "notes",
        "forecast",
        "tags",
        "tasks",
        "signal_actions",
        "training",
    ]
    assert [i.position for i in found] == list(range(1, 11))
    for indicator in found:
        for text in (indicator.label, indicator.target, indicator.definition):
            assert str(text), indicator.key
        assert str(indicator.advice) and str(indicator.no_data), indicator.key


def test_the_indicators_numbers_are_registered_metrics_of_the_selftest_group():
    grouped = [m for m in metrics.metrics() if m.group == "selftest"]
    assert len(grouped) >= 28
    for metric in grouped:
        assert metric.key.startswith("selftest."), metric.key
        assert str(metric.label) and str(metric.definition) and metric.columns, metric.key


# -- the pass rule and the score -------------------------------------------------------------------


def never(tenant, today):
    raise AssertionError("not computed")


def indicator(threshold, higher_is_better, inclusive) -> Indicator:
    return Indicator(
        key="x",
        position=1,
        label="X",
        target="X",
        threshold=threshold,
        higher_is_better=higher_is_better,
        inclusive=inclusive,
        compute=never,
    )


@pytest.mark.parametrize(
    ("threshold", "higher", "inclusive", "value", "passes"),
    [
        (0.95, True, True, 19 / 20, True),  # ≥ 95 %: reaching it passes
        (0.95, True, True, 18 / 20, False),
        (0.75, True, False, 3 / 4, False),  # > 75 %: reaching it is not enough
        (0.75, True, False, 4 / 5, True),
        (0.15, False, False, 3 / 20, False),  # < 15 %: reaching it fails
        (0.15, False, False, 2 / 20, True),
        (1, True, True, 1, True),  # ≥ 1 a month
        (1, True, True, 0, False),
    ],
)
def test_an_indicator_passes_by_its_threshold_and_direction(
    threshold, higher, inclusive, value, passes
):
    assert indicator(threshold, higher, inclusive).passes(value) is passes


def outcomes(passed: int, failed: int, no_data: int) -> list[Outcome]:
    result = Result(None, "n", "d", "f", date(2026, 3, 1), date(2026, 3, 31))
    statuses = (
        [selftest.PASSED] * passed + [selftest.FAILED] * failed + [selftest.NO_DATA] * no_data
    )
    return [Outcome(indicator(0.5, True, True), result, status) for status in statuses]


@pytest.mark.parametrize(
    ("passed", "failed", "no_data", "score"),
    [
        (10, 0, 0, Decimal("10.0")),
        (7, 1, 2, Decimal("8.8")),  # 7 of the 8 with data: 8.75, rounded half up
        (2, 1, 7, Decimal("6.7")),  # 6.666…
        (1, 7, 2, Decimal("1.3")),  # 1.25
        (0, 3, 7, Decimal("0.0")),
        (0, 0, 10, None),  # nothing with data: no score
    ],
)
def test_the_score_is_passing_over_with_data_times_10_to_one_decimal(
    passed, failed, no_data, score
):
    assert selftest.score(outcomes(passed, failed, no_data)) == score


# -- the page ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.REP, Role.MARKETING, Role.SERVICE])
def test_only_managers_and_admins_open_the_page(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    assert login(member).get(PAGE).status_code == 403


def test_the_page_asks_strangers_to_log_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_the_url_is_named_self_test():
    assert reverse("self_test") == PAGE


def today_of(tenant) -> date:
    return timezone.localdate(timezone=tenant.tzinfo)


def build_page(side):
    """In `side`'s window (the 30 days before its real today): two leads of the rep, one
    assigned 3 hours after its creation (the assignment indicator fails, 1 of 2 in time),
    one after 1 hour; a customer created long ago, followed up by the manager 3 days ago
    (its profile is fresh) with a next action done on its due day (task completion
    passes). The seven other indicators have no data (the rep, whose seat is new, has no
    recorded activity: no working day yet)."""
    t = side.tenant
    day = today_of(t) - timedelta(days=3)
    created = local(t, day.year, day.month, day.day, 9)
    make_lead(t, created_at=created, owner=side.rep, assigned_at=created + timedelta(hours=3))
    make_lead(t, created_at=created, owner=side.rep, assigned_at=created + timedelta(hours=1))
    cust = customer(side, "恒力液压", created_at=created - timedelta(days=400))
    interaction(side, by=side.manager, customer=cust, at=created, due=day, done_at=created)
    return day


def figures_shown(text: str) -> dict[str, str]:
    """Each indicator's status on the page: {key: status}."""
    return dict(re.findall(r'data-indicator="(\w+)" data-status="(\w+)"', text))


def test_the_manager_sees_the_score_the_ten_indicators_and_their_links(world, en):
    a = world.a
    build_page(a)
    response = en(a.manager).get(PAGE)
    assert response.status_code == 200
    text = unescape(response.content.decode())
    statuses = figures_shown(text)
    assert len(statuses) == 10
    # Assignment fails (1 of 2 in time), tasks pass (1 of 1), customer profiles pass (the
    # customer was followed up); the others have no data: 2 of 3, 6.7.
    assert statuses["assignment"] == selftest.FAILED
    assert statuses["tasks"] == selftest.PASSED
    assert statuses["freshness"] == selftest.PASSED
    assert list(statuses.values()).count(selftest.NO_DATA) == 7
    assert response.context["score"] == Decimal("6.7")
    assert re.search(r'data-testid="score-value">6\.7<', text)

    start, end = selftest.window(today_of(a.tenant))
    span = f"start={start.isoformat()}&end={end.isoformat()}"
    # The value links to the rows it counts, the failing indicator to its failing rows and
    # their owner's.
    assert f"/reports/metrics/selftest.leads_assigned_2h/?{span}" in text
    assert f"/reports/metrics/selftest.leads_created/?{span}" in text
    assert f"/reports/metrics/selftest.leads_assigned_late/?{span}" in text
    assert f"/reports/metrics/selftest.leads_assigned_late/?{span}&rep={a.rep.pk}" in text
    assert a.rep.display_name in text
    assert "What to do" in text and "暂无数据" not in text  # English page: "No data"
    assert text.count("No data") >= 7
    # The gauge: data for the static script, no inline script.
    assert 'id="selftest-gauge-data"' in text and "crm/selftest.js" in text
    assert "<script>" not in text


def test_a_failing_indicators_links_open_its_rows(world, en):
    a = world.a
    build_page(a)
    with_links = en(a.admin)
    page = with_links.get(PAGE)
    assert page.status_code == 200
    outcome = next(o for o in page.context["outcomes"] if o.indicator.key == "assignment")
    assert outcome.result.failing_value == 1
    assert [owner.membership for owner in outcome.owners] == [a.rep]
    for url in (outcome.failing_url, outcome.owners[0].url, outcome.numerator_url):
        assert with_links.get(url).status_code == 200


def test_the_page_is_in_chinese_by_default_with_no_data_as_zan_wu_shu_ju(world, login):
    text = login(world.a.manager).get(PAGE).content.decode()
    assert "暂无数据" in text


def test_another_tenants_rows_are_never_counted(world, en):
    build_page(world.a)
    response = en(world.b.manager).get(PAGE)
    statuses = figures_shown(unescape(response.content.decode()))
    assert set(statuses.values()) == {selftest.NO_DATA}
    assert response.context["score"] is None
    assert world.a.rep.display_name not in response.content.decode()


def test_the_page_reads_a_bounded_number_of_queries(world, en, django_assert_max_num_queries):
    a = world.a
    build_page(a)
    client = en(a.manager)
    client.get(PAGE)  # the session, warm
    with django_assert_max_num_queries(40):
        assert client.get(PAGE).status_code == 200
