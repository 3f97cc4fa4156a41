"""The manager dashboard (/dashboard/, crm.dashboard): every number it shows, at every
level (all regions, a region, a rep), opens a list whose rows add up to it; the figures,
the previous period, the region and rep tables and the chart recounted by hand; who may
see it; other tenants; bad input; a query count that does not grow with the rows; the
CSV of every table."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import dashboard, metrics
from crm.metrics import COUNT
from crm.models import Role
from tests.crm.dashboard_helpers import (
    JS,
    PERIOD,
    PREVIOUS_TOTALS,
    REGIONS,
    REPS,
    SHANGHAI,
    ZJ,
    Seeded,
    customer,
    opportunity,
    seed,
)
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead

pytestmark = pytest.mark.django_db

URL = reverse("dashboard")
TILES = {
    "leads.delivered",
    "leads.valid_24h_rate",
    "leads.invalid",
    "opportunities.created",
    "opportunities.won",
    "opportunities.won_amount",
    "service.tickets",
    "service.repeat_complaints",
    "service.in_target_rate",
}


def csv_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def rows_behind(client, link: str):
    """What the list a number links to adds up to, from its CSV: its rows, or the sum of
    the column its metric adds up."""
    path = urlsplit(link).path
    key = path.rstrip("/").rsplit("/", 1)[-1]
    metric = metrics.get_metric(key)
    table = csv_of(client.get(f"{link}&_export=csv"))
    page = client.get(link)
    assert page.status_code == 200
    if metric.aggregate == COUNT:
        assert page.context["count"] == len(table) - 1
        return len(table) - 1
    paths = [column.path for column in metric.columns]
    index = paths.index(metric.of) if metric.of in paths else len(paths)
    total = sum((Decimal(row[index]) for row in table[1:] if row[index]), Decimal(0))
    assert page.context["figure"] == total
    return total


def check_every_number(client, response) -> int:
    """Follows every number of the page; returns how many were followed."""
    followed = 0
    for figure in response.context["figures"]:
        for number in figure.numbers:
            assert rows_behind(client, number.url) == number.value, (figure.tile.key, number)
            followed += 1
    table = response.context["table"]
    for row in table.rows if table is not None else ():
        for metric, cell in zip(table.columns, row.cells, strict=True):
            assert rows_behind(client, cell.url) == cell.value, (row.label, metric.key)
            followed += 1
    return followed


def figures(response) -> dict:
    return {figure.tile.key: figure for figure in response.context["figures"]}


def test_every_tile_is_registered_with_its_metrics():
    assert {tile.key for tile in dashboard.tiles()} >= TILES
    for tile in dashboard.tiles():
        assert dashboard.tile_metrics(tile), tile.key


def test_every_number_of_every_level_opens_rows_that_add_up_to_it(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    top = client.get(URL, PERIOD)
    assert set(figures(top)) == TILES
    assert check_every_number(client, top) > 9 * 2 + 3 * 10
    region = client.get(URL, {**PERIOD, "region": ZJ})
    assert check_every_number(client, region)
    rep = client.get(URL, {**PERIOD, "region": ZJ, "rep": seeded.rep.pk})
    assert check_every_number(client, rep)
    for query in ({"region": ""}, {"region": JS, "rep": ""}, {"rep": seeded.rep2.pk}):
        assert check_every_number(client, client.get(URL, {**PERIOD, **query}))


def test_the_figures_and_the_previous_period_by_hand(world, en):
    seed(world)
    shown = figures(en(world.a.manager).get(URL, PERIOD))
    for key in TILES - {"leads.valid_24h_rate", "service.in_target_rate"}:
        assert shown[key].current.value == REGIONS[key][0], key
        assert shown[key].previous.value == PREVIOUS_TOTALS[key], key
    assert shown["leads.delivered"].delta == "+4"
    assert shown["opportunities.won_amount"].current.text == "¥380,000"
    assert shown["opportunities.won_amount"].delta == "+¥375,000"
    assert shown["leads.invalid"].delta == "±0"
    rate = shown["leads.valid_24h_rate"]
    assert (rate.numerator.value, rate.denominator.value) == (2, 6)
    assert rate.current.value == pytest.approx(2 / 6)
    assert rate.previous.value == pytest.approx(1 / 2)
    assert (rate.current.text, rate.delta) == ("33.3%", "−16.7 pp")
    target = shown["service.in_target_rate"]
    assert (target.numerator.value, target.denominator.value) == (2, 3)
    assert (target.previous_numerator.value, target.previous_denominator.value) == (1, 1)


def test_the_region_table_and_its_links_down(world, en):
    seed(world)
    response = en(world.a.manager).get(URL, PERIOD)
    table = response.context["table"]
    assert table.dimension == "region"
    assert [row.value for row in table.rows] == [ZJ, JS, ""]
    assert table.rows[-1].label == "(no region)"
    columns = [metric.key for metric in table.columns]
    for index, row in enumerate(table.rows):
        by_key = dict(zip(columns, (cell.value for cell in row.cells), strict=True))
        for key, counted in REGIONS.items():
            assert by_key[key] == counted[index + 1], (row.value, key)
    link = parse_qs(urlsplit(table.rows[0].link).query)
    assert link["region"] == [ZJ] and link["start"] == ["2026-03-01"]
    assert f'href="{table.rows[0].link.replace("&", "&amp;")}"' in response.text


def test_a_region_shows_its_reps_and_a_rep_their_figures(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    response = client.get(URL, {**PERIOD, "region": JS})
    assert [label for label, _url in response.context["breadcrumb"]] == ["All regions", JS]
    table = response.context["table"]
    assert table.dimension == "rep"
    names = {row.value: row.label for row in table.rows}
    assert names[seeded.rep2.pk] == "李雷"
    assert names[""] == "(no owner)"  # the unmatched ticket of 江苏
    rep_link = next(row.link for row in table.rows if row.value == seeded.rep2.pk)
    rep_page = client.get(rep_link)
    assert [label for label, _url in rep_page.context["breadcrumb"]] == [
        "All regions",
        JS,
        "李雷",
    ]
    assert rep_page.context["table"] is None
    shown = figures(rep_page)
    assert shown["leads.delivered"].current.value == 2
    assert shown["opportunities.won_amount"].current.value == Decimal("80000")
    # The rep's figures open that rep's leads in that region, each with its page.
    lead_rows = client.get(shown["leads.delivered"].current.url)
    assert lead_rows.context["count"] == 2
    lead = seeded.leads["L4"]
    assert reverse("leads:detail", args=[lead.public_id]) in lead_rows.text


def test_the_rep_figures_over_every_region(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    for index, rep in enumerate((seeded.rep.pk, seeded.rep2.pk, "")):
        shown = figures(client.get(URL, {**PERIOD, "rep": rep}))
        for key in ("leads.delivered", "opportunities.won", "service.tickets"):
            assert shown[key].current.value == REPS[key][index], (rep, key)


def test_the_chart_is_the_days_of_both_periods(world, en):
    seed(world)
    chart = en(world.a.manager).get(URL, PERIOD).context["chart"]
    assert len(chart["days"]) == 31 and chart["days"][0] == "2026-03-01"
    # March beside February, day i at day i: the 29th to the 31st have no February day.
    assert chart["previous_days"][0] == "2026-02-01"
    assert chart["previous_days"][27:] == ["2026-02-28", "", "", ""]
    series = {(s["name"], s["previous"]): s["data"] for s in chart["series"]}
    assert sum(p["value"] for p in series[("Delivered", False)]) == 6
    previous = series[("Delivered (previous period)", True)]
    assert len(previous) == 31 and previous[28:] == [{"value": None}] * 3
    assert sum(p["value"] or 0 for p in previous) == 2
    assert sum(p["value"] for p in series[("Opportunities won", False)]) == 3
    assert sum(p["value"] or 0 for p in series[("Opportunities won (previous period)", True)]) == 1
    assert series[("Delivered", False)][0]["value"] == 1  # L1, at 00:00:01 on 1 March
    assert "start=2026-03-01&end=2026-03-01" in series[("Delivered", False)][0]["url"]


def test_presets_and_an_empty_period_said_so(world, login):
    today = timezone.localdate(timezone=SHANGHAI)
    client = login(world.a.manager)
    response = client.get(URL)
    period = response.context["period"]
    assert (period.start, period.end) == (today.replace(day=1), today)
    assert 'data-testid="dashboard-empty"' in response.text
    week = client.get(URL, {"period": "week"}).context["period"]
    assert week.start == today - timedelta(days=today.weekday())
    quarter = client.get(URL, {"period": "quarter"}).context["period"]
    assert quarter.start.day == 1 and quarter.start.month in (1, 4, 7, 10)
    last_30 = client.get(URL, {"period": "30d"}).context["period"]
    assert last_30.days == 30 and last_30.end == today
    assert 'data-testid="table-empty"' in response.text


def test_it_is_the_home_of_managers_and_admins(world, login):
    for who in (world.a.manager, world.a.admin):
        response = login(who).get("/")
        assert response.status_code == 302 and response["Location"] == URL
    assert login(world.a.rep).get("/")["Location"] == "/board/"
    admin = login(world.a.admin).get(URL)
    assert 'data-testid="system-status"' in admin.text
    assert reverse("admin:index") in admin.text
    # The pages the home page listed beyond the menu stay one click away.
    manager = login(world.a.manager).get(URL)
    assert reverse("admin:leads_assignmentpolicy_changelist") in manager.text
    assert 'data-testid="system-status"' not in manager.text


@pytest.mark.parametrize("role", [Role.REP, Role.MARKETING, Role.SERVICE])
def test_other_roles_may_not_open_it(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    assert login(member).get(URL).status_code == 403
    assert login(member).get(URL, {"_export": "regions"}).status_code == 403


def test_another_tenants_rep_is_404_and_its_rows_are_never_counted(world, en):
    seed(world)
    client = en(world.a.manager)
    assert client.get(URL, {**PERIOD, "rep": world.b.rep.pk}).status_code == 404
    assert client.get(URL, {**PERIOD, "rep": "x"}).status_code == 404
    b = figures(en(world.b.manager).get(URL, PERIOD))
    assert b["leads.delivered"].current.value == 1
    assert b["opportunities.won_amount"].current.value == Decimal("9")
    assert b["service.tickets"].current.value == 1


@pytest.mark.parametrize(
    "query",
    [
        {"start": "2026-02-30"},
        {"start": "2026-03-31", "end": "2026-03-01"},
        {"period": "century"},
        {"start": "2019-01-01", "end": "2026-01-01"},
    ],
)
def test_bad_periods_are_400(world, en, query):
    client = en(world.a.manager)
    response = client.get(URL, query)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert client.get(URL, {**query, "_export": "regions"}).status_code == 400


def test_an_unknown_table_or_a_long_region_is_400(world, en):
    client = en(world.a.manager)
    assert client.get(URL, {**PERIOD, "_export": "everything"}).status_code == 400
    assert client.get(URL, {**PERIOD, "region": "x" * 101}).status_code == 400


def _more_rows(world, seeded: Seeded, count: int) -> None:
    """`count` more leads, opportunities and tickets in March, across regions and reps."""
    from tests.service_feedback.helpers import upsert

    a = world.a
    channel = make_channel(a.tenant, name=f"渠道{count}")
    found = customer(a, f"客户{count}", province=ZJ, owner=seeded.rep2)
    base = timezone.make_aware(timezone.datetime(2026, 3, 4, 8), SHANGHAI)
    for i in range(count):
        owner = (seeded.rep, seeded.rep2)[i % 2]
        make_lead(
            a.tenant,
            channel,
            created_at=base + timedelta(hours=i),
            province=f"省{i % 7}",
            owner=owner,
        )
        opportunity(a, found, owner, created=base + timedelta(hours=i), amount="100", won=base)
        # Matched to a customer: the home card of unmatched tickets stays as it was.
        upsert(
            a,
            f"X{count}-{i}",
            opened_at=base + timedelta(hours=i),
            province=f"省{i % 7}",
            phone="13800000001",
        )


def test_the_query_count_does_not_grow_with_the_rows(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    levels = (PERIOD, {**PERIOD, "region": ZJ}, {**PERIOD, "region": ZJ, "rep": seeded.rep.pk})
    client.get(URL, PERIOD)
    before = []
    for query in levels:
        with CaptureQueriesContext(connection) as counted:
            client.get(URL, query)
        before.append(len(counted))
    _more_rows(world, seeded, 40)
    after = []
    for query in levels:
        with CaptureQueriesContext(connection) as counted:
            assert client.get(URL, query).status_code == 200
        after.append(len(counted))
    assert after == before, (before, after)
    assert max(after) <= 40, after


def test_the_csv_of_every_table(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    regions = csv_of(client.get(URL, {**PERIOD, "_export": "regions"}))
    table = client.get(URL, PERIOD).context["table"]
    assert regions[0] == ["Region", *(str(m.label) for m in table.columns)]
    assert [row[0] for row in regions[1:]] == [ZJ, JS, "(no region)"]
    delivered = regions[0].index("Delivered")
    assert [row[delivered] for row in regions[1:]] == ["3", "2", "1"]
    reps = csv_of(client.get(URL, {**PERIOD, "region": ZJ, "_export": "reps"}))
    assert reps[0][0] == "Rep"
    assert [row[0] for row in reps[1:]] == [seeded.rep.display_name]
    tiles = csv_of(client.get(URL, {**PERIOD, "_export": "tiles"}))
    by_label = {row[0]: row[1:] for row in tiles[1:]}
    assert by_label["Delivered"] == ["6", "2", "+4"]
    assert by_label["24 h valid rate"][:2] == ["0.3333", "0.5000"]
    assert by_label["Amount signed"][:2] == ["380000.00", "5000.00"]
