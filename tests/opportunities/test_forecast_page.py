"""The forecast page (/opportunities/forecast/): who sees what, the figures against a
recount of the rows, the frozen months with their accuracy, the stage probabilities
saying which are calibrated, empty states and a query count that does not grow."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from opportunities import calibration, forecast
from tests.factories import MembershipFactory
from tests.opportunities.test_calibration import build_history
from tests.opportunities.test_forecast import opportunity, recount_forecast

pytestmark = pytest.mark.django_db

URL = "/opportunities/forecast/"


def this_month(side):
    return forecast.first_of_month(forecast.local_today(side.tenant))


def cell(html: str, figure: str) -> dict:
    """The data attributes of the live cell `figure` ("team:0", "<uuid>:total")."""
    match = re.search(rf'data-figure="{re.escape(figure)}"([^>]*)>', html)
    assert match, figure
    return dict(re.findall(r'data-(\w+)="([^"]*)"', match.group(1)))


def build_live(world, reps=1, per_rep=1, batch="r"):
    """Open opportunities over the next months for the rep, the manager and `reps` more
    reps; one valid; and tenant b's, which a's page never shows."""
    a = world.a
    month = this_month(a)
    opportunity(a, a.rep, amount="100000", probability=25, month=month)
    opportunity(a, a.rep, amount="200000", probability=70, month=month, valid=True)
    opportunity(a, a.rep, amount="300000", probability=45, month=forecast.add_months(month, 2))
    opportunity(a, a.manager, amount="50000", probability=10, month=month)
    # Beyond the six months, and past: not shown.
    opportunity(a, a.rep, amount="900000", probability=90, month=forecast.add_months(month, 6))
    opportunity(a, a.rep, amount="900000", probability=90, month=forecast.add_months(month, -1))
    for n in range(reps):
        other = MembershipFactory(
            tenant=a.tenant, role=Role.REP, user__username=f"alpha-{batch}{n}"
        )
        for i in range(per_rep):
            opportunity(
                a, other, amount="10000", probability=10, month=forecast.add_months(month, i % 6)
            )
    opportunity(world.b, world.b.rep, amount="7777777", probability=90, month=month)
    return month


def test_a_manager_sees_the_team_and_each_rep_as_recounted(world, en):
    month = build_live(world)
    response = en(world.a.manager).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    expected = recount_forecast(world.a, month)
    team = cell(html, "team:0")
    assert Decimal(team["value"]).quantize(Decimal("0.01")) == expected[None][0]
    assert Decimal(team["valid"]).quantize(Decimal("0.01")) == expected[None][1]
    assert int(team["count"]) == expected[None][2] == 4  # 3 + the other rep's one
    rep = cell(html, f"{world.a.rep.public_id}:0")
    assert Decimal(rep["value"]) == Decimal("165000")  # 25,000 + 140,000
    assert Decimal(rep["valid"]) == Decimal("140000")
    assert Decimal(cell(html, f"{world.a.rep.public_id}:2")["value"]) == Decimal("135000")
    assert Decimal(cell(html, f"{world.a.rep.public_id}:total")["value"]) == Decimal("300000")
    assert Decimal(cell(html, f"{world.a.manager.public_id}:0")["value"]) == Decimal("5000")
    assert "¥165,000" in html
    assert "7,777,777" not in html and "7000000" not in html  # tenant b's


def test_a_rep_sees_only_their_own(world, en):
    build_live(world)
    html = en(world.a.rep).get(URL).content.decode()
    assert 'data-figure="team:0"' not in html
    mine = cell(html, "mine:0")
    assert Decimal(mine["value"]) == Decimal("165000")
    assert int(mine["count"]) == 2
    assert str(world.a.manager.public_id) not in html
    assert world.a.manager.display_name not in html


@pytest.mark.parametrize(
    ("role", "status"), [("manager", 200), ("admin", 200), ("rep", 200), ("service", 403)]
)
def test_who_may_open_it(world, login, role, status):
    if role == "service":
        member = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    else:
        member = getattr(world.a, role)
    assert login(member).get(URL).status_code == status


def test_marketing_sees_the_team(world, en):
    build_live(world)
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    html = en(marketing).get(URL).content.decode()
    assert 'data-figure="team:0"' in html


def test_the_url_is_named():
    assert reverse("opportunities:forecast") == URL


def test_a_new_tenant_sees_every_empty_state(world, en):
    html = en(world.a.manager).get(URL).content.decode()
    assert 'data-testid="no-live"' in html
    assert 'data-testid="no-history"' in html
    assert 'data-testid="no-stages"' in html
    assert "forecast-chart-data" not in html
    assert "echarts" not in html


def test_stage_probabilities_say_which_are_calibrated(world, en):
    build_history(world.a)
    html = en(world.a.manager).get(URL).content.decode()
    # Before the first run: every stage on its default, "not calibrated yet".
    assert html.count('data-calibrated="no"') == 5
    assert "Not calibrated yet" in html
    with tenant_context(world.a.tenant):
        calibration.recalibrate(world.a.tenant)
    html = en(world.a.manager).get(URL).content.decode()
    assert html.count('data-calibrated="yes"') == 2
    assert html.count('data-calibrated="no"') == 3
    assert "7 of 29 won" in html and "7 of 23 won" in html
    assert html.count("Fewer than 20 cases: the default is used") == 3
    needs = re.search(r'data-stage="需求确认"[^>]*>.*?data-probability="(\d+)"', html, re.S)
    demo = re.search(r'data-stage="方案演示"[^>]*>.*?data-probability="(\d+)"', html, re.S)
    assert (needs.group(1), demo.group(1)) == ("30", "45")


def _closed_months(world):
    """Last month frozen and closed (forecast 100,000 × 50 % for the rep, signed 40,000);
    the month before frozen with nothing signed; this month frozen, not over."""
    a = world.a
    now_month = this_month(a)
    last, before = forecast.add_months(now_month, -1), forecast.add_months(now_month, -2)
    opportunity(a, a.rep, amount="100000", probability=50, month=last)
    opportunity(a, a.manager, amount="30000", probability=10, month=before)
    opportunity(a, a.rep, amount="80000", probability=25, month=now_month)
    since, _until = forecast.month_bounds(a.tenant, last)
    opportunity(
        a,
        a.rep,
        amount="40000",
        probability=100,
        status="won",
        won_at=since + timedelta(days=3),
        month=last,
    )
    today = forecast.local_today(a.tenant)
    with tenant_context(a.tenant):
        for month in (before, last, now_month):
            forecast.freeze(a.tenant, month)
        forecast.close_ended(a.tenant, today)
    return before, last, now_month


def test_the_frozen_months_against_what_was_signed(world, en):
    before, last, now_month = _closed_months(world)
    html = en(world.a.manager).get(URL).content.decode()
    assert f'data-month="{last:%Y-%m}"' in html
    row = html[html.index(f'data-month="{last:%Y-%m}"') :].split("</tr>", 1)[0]
    assert "¥50,000" in row and "¥40,000" in row  # frozen forecast, signed
    assert 'data-accuracy="0.7500"' in row and "75.0%" in row  # 1 - 10,000 / 40,000
    empty = html[html.index(f'data-month="{before:%Y-%m}"') :].split("</tr>", 1)[0]
    assert 'data-accuracy=""' in empty and "—" in empty  # nothing signed
    current = html[html.index(f'data-month="{now_month:%Y-%m}"') :].split("</tr>", 1)[0]
    assert "month not over" in current
    # Per rep.
    assert 'data-testid="table-rep-history"' in html
    assert f'data-row="{world.a.rep.public_id}"' in html
    # The chart's data, with the vendored ECharts.
    data = json.loads(
        re.search(r'id="forecast-chart-data"[^>]*>(.*?)</script>', html, re.S).group(1)
    )
    assert data["months"] == [f"{m:%Y-%m}" for m in (before, last, now_month)]
    assert data["forecast"] == [3000.0, 50000.0, 20000.0]
    assert data["signed"] == [0.0, 40000.0, None]
    assert data["accuracy"] == [None, 75.0, None]
    assert "vendor/echarts/echarts.min.js" in html
    assert "opportunities/forecast.js" in html


def test_a_rep_sees_their_own_frozen_months(world, en):
    _before, last, _now = _closed_months(world)
    html = en(world.a.rep).get(URL).content.decode()
    assert 'data-testid="table-rep-history"' not in html
    row = html[html.index(f'data-month="{last:%Y-%m}"') :].split("</tr>", 1)[0]
    assert 'data-accuracy="0.7500"' in row
    # The manager's month (30,000 × 10 % the month before) is not theirs: a frozen row
    # of 0 would not exist for the rep, so that month is absent.
    assert "¥3,000" not in html


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    return len(captured.captured_queries)


def test_the_query_count_does_not_grow(world, login):
    build_live(world, reps=1, per_rep=1)
    _closed_months(world)
    client = login(world.a.manager)
    few = _queries(client)
    build_live(world, reps=6, per_rep=8, batch="s")
    with tenant_context(world.a.tenant):
        calibration.recalibrate(world.a.tenant)
        forecast.freeze(world.a.tenant, forecast.add_months(this_month(world.a), -3))
    many = _queries(client)
    assert many == few
    assert few <= 12


def test_the_six_months_start_with_the_tenants_current_month(world, en):
    month = build_live(world)
    html = en(world.a.manager).get(URL).content.decode()
    headers = re.findall(r'<th scope="col" class="text-end text-nowrap">(\d{4}-\d{2})</th>', html)
    assert headers == [f"{forecast.add_months(month, n):%Y-%m}" for n in range(6)]
