"""The lead-to-contract cycle report (F38, /reports/cycle/, docs/cycle.md): every figure
of a cohort recomputed here from hand-built leads and opportunities (median, histogram
buckets, the share still open after 120 days, cohort edges in the tenant's time zone),
each number's link opening rows as many as it says, the filters, the roles, the CSV, the
tenant fence and the query budget.

Cohorts are months counted back from the current one (M0): the 120-day rule depends on
today. A = M0 − 8 and B = M0 − 7 are always old enough, M0 never."""

from __future__ import annotations

import csv
import html
import io
import re
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import metrics
from crm.models import Role
from crm.tenancy import tenant_context
from leads.models import LeadStatus, Verification
from opportunities import cycle_metrics as cm
from opportunities.forecast import add_months
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead, make_rep
from tests.metric_links import parse, rows_behind
from tests.opportunities.test_forecast import opportunity

pytestmark = pytest.mark.django_db

URL = reverse("opportunity_reports:cycle")
BUCKETS = ((0, 30), (31, 60), (61, 90), (91, 120), (121, 180), (181, None))


def month_start(tenant, month: date) -> datetime:
    return datetime.combine(month, time(0), tzinfo=tenant.tzinfo)


def current_month(tenant) -> date:
    return timezone.localdate(timezone=tenant.tzinfo).replace(day=1)


@dataclass
class Spec:
    """One hand-built lead and what became of it."""

    month: date  # its cohort (for the expectations)
    created: datetime
    owner: object
    channel: object
    valid: bool = False  # verified valid
    outcome: str = ""  # "won", "lost", "open" (an opportunity), "" (none)
    days: int | None = None  # the won opportunity's lead_to_contract_days
    closed_after: float = 0  # days from the lead's creation to the win or loss
    invalid: bool = False


def build(world) -> dict:
    a = world.a
    t = a.tenant
    m0 = current_month(t)
    month_a, month_b = add_months(m0, -8), add_months(m0, -7)
    second = make_rep(t, "cycle-second")
    web = make_channel(t, name="官网表单")
    fair = make_channel(t, name="展会扫码")
    start_a = month_start(t, month_a)
    start_b = month_start(t, month_b)
    last_b = month_start(t, add_months(month_b, 1)) - timedelta(seconds=1)
    day = timedelta(days=1)
    specs = [
        # Cohort A: the rep's, from the web form.
        Spec(month_a, start_a + 2 * day, a.rep, web, True, "won", 25, 30),
        Spec(month_a, start_a + 3 * day, a.rep, web, True, "won", 31, 40),
        Spec(month_a, start_a + 4 * day, a.rep, web, True, "won", 95, 100),
        Spec(month_a, start_a + 5 * day, a.rep, web, True, "won", 150, 155),  # after 120
        Spec(month_a, start_a + 6 * day, a.rep, web, True),  # valid, nothing since
        Spec(month_a, start_a + 7 * day, a.rep, web, False, "open"),  # an opportunity
        Spec(month_a, start_a + 8 * day, a.rep, web, True, "lost", None, 50),
        Spec(month_a, start_a + 9 * day, a.rep, web, invalid=True),
        Spec(month_a, start_a, a.rep, web),  # the cohort's first instant
        # Cohort B: the second rep's, from the fair.
        Spec(month_b, start_b + day, second, fair, True, "won", 200, 205),  # after 120
        Spec(month_b, start_b + 2 * day, second, fair, True, "won", 61, 66),
        Spec(month_b, last_b, second, fair, True, "won", 90, 95),  # the last instant
        Spec(month_b, start_b + 3 * day, second, fair, True, "won", None, 10),  # no cycle
        # The current month: not old enough.
        Spec(m0, month_start(t, m0), a.rep, web, True, "won", 5, 0.5),
        Spec(m0, month_start(t, m0) + timedelta(hours=1), second, fair, invalid=True),
    ]
    before = Spec(
        add_months(month_a, -1), start_a - timedelta(seconds=1), a.rep, web, True, "won", 10, 12
    )
    for spec in [*specs, before]:
        _make(a, spec)
    # Tenant b: a cohort-A lead won, never counted in a.
    other = Spec(
        month_a, start_a + 2 * day, world.b.rep, make_channel(world.b.tenant), True, "won", 3, 4
    )
    _make(world.b, other)
    return {
        "specs": specs,
        "m0": m0,
        "a": month_a,
        "b": month_b,
        "second": second,
        "web": web,
        "fair": fair,
        "other_channel": other.channel,
    }


def _make(side, spec: Spec):
    fields = {}
    if spec.valid:
        fields = {
            "status": LeadStatus.VALID,
            "verification": Verification.VALID_VISIT,
            "verified_at": spec.created + timedelta(hours=2),
        }
    elif spec.invalid:
        fields = {
            "status": LeadStatus.INVALID,
            "verification": Verification.INVALID_NOT_TARGET,
            "verified_at": spec.created + timedelta(hours=2),
        }
    else:
        fields = {"status": LeadStatus.ASSIGNED}
    lead = make_lead(
        side.tenant, channel=spec.channel, owner=spec.owner, created_at=spec.created, **fields
    )
    closed = spec.created + timedelta(days=spec.closed_after)
    if spec.outcome == "won":
        opportunity(
            side,
            spec.owner,
            origin_lead=lead,
            status="won",
            won_at=closed,
            probability=100,
            lead_to_contract_days=spec.days,
        )
    elif spec.outcome == "lost":
        opportunity(
            side, spec.owner, origin_lead=lead, status="lost", lost_at=closed, probability=0
        )
    elif spec.outcome == "open":
        opportunity(side, spec.owner, origin_lead=lead)
    return lead


# -- the expectations, recomputed from the specs ---------------------------------------------


def mature(tenant, month: date) -> bool:
    """Every lead of the month 120 days old at the start of today (local)."""
    today = datetime.combine(timezone.localdate(timezone=tenant.tzinfo), time(0), tenant.tzinfo)
    return month_start(tenant, add_months(month, 1)) + timedelta(days=120) <= today


def figures(specs: list[Spec], tenant, *, share_months=None) -> dict:
    valid = [s for s in specs if s.valid or s.outcome]
    won = [s for s in specs if s.outcome == "won"]
    days = [s.days for s in won if s.days is not None]
    months = {s.month for s in specs} if share_months is None else share_months
    matured = [s for s in valid if s.month in months and mature(tenant, s.month)]
    open_120 = [s for s in matured if s.outcome not in ("won", "lost") or s.closed_after > 120]
    result = {
        "leads": len(specs),
        "valid": len(valid),
        "won": len(won),
        "median_days": statistics.median(days) if days else None,
        "matured": len(matured),
        "open_120": len(open_120),
    }
    for (low, high), (name, *_rest) in zip(BUCKETS, cm.BUCKETS, strict=True):
        result[f"days_{name}"] = sum(1 for d in days if d >= low and (high is None or d <= high))
    return result


# -- reading the page -------------------------------------------------------------------------

CELL = re.compile(r'<td[^>]*data-figure="([^"]+)" data-value="([^"]*)">(.*?)</td>', re.S)
HREF = re.compile(r'<a href="([^"]+)"')


def cells(response) -> dict:
    """{(row key, cell name): (value or None, link or "")} of the page's table."""
    found = {}
    for figure, value, inner in CELL.findall(response.content.decode()):
        row, name = figure.split(":")
        link = HREF.search(inner)
        found[(row, name)] = (
            float(value) if value else None,
            html.unescape(link.group(1)) if link else "",
        )
    return found


def row_values(found: dict, row: str) -> dict:
    return {name: v for (r, name), (v, _link) in found.items() if r == row}


def assert_row(found, row, want):
    got = row_values(found, row)
    for name, value in want.items():
        assert got[name] == (None if value is None else float(value)), (row, name, got[name], value)


def test_cohorts_figures_match_a_hand_count_and_their_rows(world, login):
    data = build(world)
    t = world.a.tenant
    specs, m0 = data["specs"], data["m0"]
    response = login(world.a.manager).get(
        URL, {"start": f"{data['a']:%Y-%m}", "end": f"{m0:%Y-%m}"}
    )
    assert response.status_code == 200
    found = cells(response)

    for month in (data["a"], data["b"], m0):
        want = figures([s for s in specs if s.month == month], t)
        assert_row(found, month.isoformat(), want)
    # Cohort A, by hand: 9 leads, 7 valid, 4 won in 25, 31, 95 and 150 days (median 63),
    # 3 of the 7 still open at 120 days (won at 155 days, nothing, an open opportunity).
    assert_row(
        found,
        data["a"].isoformat(),
        {"leads": 9, "valid": 7, "won": 4, "median_days": 63, "matured": 7, "open_120": 3},
    )
    assert row_values(found, data["a"].isoformat())["open_share"] == pytest.approx(3 / 7)
    assert row_values(found, data["b"].isoformat())["open_share"] == pytest.approx(1 / 4)
    # The current month is not old enough: its share is "—", its counts are none.
    assert row_values(found, m0.isoformat())["open_share"] is None
    assert row_values(found, m0.isoformat())["matured"] == 0
    assert 'data-testid="maturity-note"' in response.content.decode()

    # The cohorts between hold nothing.
    month = add_months(data["b"], 1)
    while month < m0:
        assert set(row_values(found, month.isoformat()).values()) <= {0, None}
        month = add_months(month, 1)

    # The total: every cohort of the range; its share over the cohorts old enough.
    mature_months = {s.month for s in specs if mature(t, s.month)}
    want = figures(specs, t, share_months=mature_months)
    total = row_values(found, "total")
    assert_row(found, "total", {k: v for k, v in want.items() if k not in ("matured", "open_120")})
    assert total["open_share"] == pytest.approx(want["open_120"] / want["matured"])
    assert want["open_120"] / want["matured"] == pytest.approx(4 / 11)

    # Each number links to rows as many as it says (the median: recounted from them).
    for (row, name), (value, link) in found.items():
        if name == "open_share":
            assert link == ""
            continue
        assert link, (row, name)
        metric = metrics.get_metric(parse(link)[0])
        table = rows_behind(link, t)
        recounted = metrics.recount(metric, table)
        assert (None if recounted is None else float(recounted)) == value, (row, name)


def test_every_cycle_metric_equals_its_rows(world):
    data = build(world)
    t = world.a.tenant
    found = [m for m in metrics.metrics() if m.group == "cycle"]
    assert len(found) == 12
    start, end = data["a"], add_months(data["m0"], 1) - timedelta(days=1)
    with tenant_context(t):
        for metric in found:
            value = metrics.value(metric, tenant=t, start=start, end=end)
            table = metrics.drill_down(metric, tenant=t, start=start, end=end)
            assert value == metrics.recount(metric, table), metric.key
        rate = metrics.get_rate(cm.OPEN_SHARE)
        numerator = set(
            cm.cohort_leads(t, start, end).filter(cm.open_at_120_q(t)).values_list("pk", flat=True)
        )
        denominator = set(
            cm.cohort_leads(t, start, end).filter(cm.matured_q(t)).values_list("pk", flat=True)
        )
        assert numerator <= denominator and rate.higher_is_better is False


def test_filters_by_rep_and_channel(world, login):
    data = build(world)
    t = world.a.tenant
    specs = data["specs"]
    client = login(world.a.manager)
    query = {"start": f"{data['a']:%Y-%m}", "end": f"{data['m0']:%Y-%m}"}

    by_rep = cells(client.get(URL, {**query, "rep": data["second"].pk}))
    mine = [s for s in specs if s.owner == data["second"]]
    for month in (data["a"], data["b"], data["m0"]):
        assert_row(by_rep, month.isoformat(), figures([s for s in mine if s.month == month], t))
    assert row_values(by_rep, data["a"].isoformat())["leads"] == 0
    # The links carry the filter.
    assert f"rep={data['second'].pk}" in by_rep[(data["b"].isoformat(), "won")][1]
    assert len(rows_behind(by_rep[("total", "won")][1], t)) == 4

    by_channel = cells(client.get(URL, {**query, "channel": data["web"].pk}))
    web = [s for s in specs if s.channel == data["web"]]
    for month in (data["a"], data["b"], data["m0"]):
        assert_row(by_channel, month.isoformat(), figures([s for s in web if s.month == month], t))
    assert f"channel={data['web'].pk}" in by_channel[("total", "leads")][1]

    both = cells(client.get(URL, {**query, "channel": data["web"].pk, "rep": data["second"].pk}))
    assert row_values(both, "total")["leads"] == 0


def test_a_rep_sees_their_own_leads_only(world, login):
    data = build(world)
    t = world.a.tenant
    client = login(world.a.rep)
    query = {"start": f"{data['a']:%Y-%m}", "end": f"{data['m0']:%Y-%m}"}
    response = client.get(URL, query)
    assert response.status_code == 200
    found = cells(response)
    mine = [s for s in data["specs"] if s.owner == world.a.rep]
    assert_row(found, data["a"].isoformat(), figures([s for s in mine if s.month == data["a"]], t))
    assert row_values(found, data["b"].isoformat())["leads"] == 0
    assert f"rep={world.a.rep.pk}" in found[("total", "leads")][1]
    # Their own id is fine; another rep's is not found.
    assert client.get(URL, {**query, "rep": world.a.rep.pk}).status_code == 200
    assert client.get(URL, {**query, "rep": data["second"].pk}).status_code == 404
    assert 'name="rep"' not in response.content.decode()


def test_who_may_read_it(world, login):
    t = world.a.tenant
    for role, status in (
        (Role.MANAGER, 200),
        (Role.ADMIN, 200),
        (Role.MARKETING, 200),
        (Role.REP, 200),
        (Role.SERVICE, 403),
    ):
        member = MembershipFactory(tenant=t, role=role)
        assert login(member).get(URL).status_code == status, role


def test_another_tenants_ids_are_not_found(world, login):
    data = build(world)
    client = login(world.a.manager)
    assert client.get(URL, {"rep": world.b.rep.pk}).status_code == 404
    assert client.get(URL, {"channel": data["other_channel"].pk}).status_code == 404
    assert client.get(URL, {"rep": 987654321}).status_code == 404
    # Tenant b's manager sees nothing of a.
    found = cells(login(world.b.manager).get(URL, {"start": f"{data['a']:%Y-%m}"}))
    assert row_values(found, data["a"].isoformat())["won"] == 1  # their own one
    assert row_values(found, "total")["leads"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-13"}, "start"),
        ({"end": "last month"}, "end"),
        ({"start": "2026-06", "end": "2026-05"}, None),
        ({"start": "2024-01", "end": "2026-01"}, None),
        ({"rep": "x"}, "rep"),
    ],
)
def test_bad_input_is_a_clear_400(world, login, query, field):
    response = login(world.a.manager).get(URL, query)
    assert response.status_code == 400
    body = response.content.decode()
    if field in ("start", "end"):
        assert f'data-testid="error-{field}"' in body
    elif field is None:
        assert 'data-testid="form-errors"' in body
    csv_response = login(world.a.manager).get(URL, {**query, "_export": "csv"})
    assert csv_response.status_code == 400


def test_csv_holds_the_table(world, en):
    data = build(world)
    t = world.a.tenant
    query = {"start": f"{data['a']:%Y-%m}", "end": f"{data['m0']:%Y-%m}", "_export": "csv"}
    response = en(world.a.manager).get(URL, query)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:5] == ["Cohort", "Leads", "Valid", "Contracts won", "Median days"]
    assert header[-1] == "Open after 120 days (%)"
    by_label = {r[0]: r for r in body}
    row_a = by_label[f"{data['a']:%Y-%m}"]
    want = figures([s for s in data["specs"] if s.month == data["a"]], t)
    assert row_a[1:5] == [str(want["leads"]), str(want["valid"]), str(want["won"]), "63.0"]
    assert row_a[5:11] == [str(want[f"days_{n}"]) for n, *_r in cm.BUCKETS]
    assert row_a[-1] == f"{3 / 7 * 100:.1f}"
    assert by_label[f"{data['m0']:%Y-%m}"][-1] == ""
    assert len(body) == 9 + 1  # nine cohorts and the total


def test_the_query_count_does_not_grow_with_cohorts_or_rows(
    world, login, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(world.a.manager)
    m0 = current_month(world.a.tenant)
    with CaptureQueriesContext(connection) as few:
        # 12 cohorts (the default), with old enough ones: the total's share reads them.
        assert client.get(URL).status_code == 200
    build(world)
    with django_assert_max_num_queries(len(few)):
        assert client.get(URL, {"start": f"{add_months(m0, -23):%Y-%m}"}).status_code == 200


def test_the_report_reads_one_grouped_query_per_family_and_the_median(world):
    """The cohorts' figures in one grouped query per family (leads, contracts); the range's
    counts and its share are the cohorts' added up, and only its median is read again:
    three queries, with the totals `values_of` gives."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from opportunities.cycle import CONTRACT_KEYS, LEAD_KEYS, cycle_report, month_end

    build(world)
    tenant = world.a.tenant
    m0 = current_month(tenant)
    start = add_months(m0, -11)
    with tenant_context(tenant):
        with CaptureQueriesContext(connection) as queries:
            report = cycle_report(tenant, start, m0)
        found = [metrics.get_metric(k) for k in (*LEAD_KEYS, *CONTRACT_KEYS)]
        totals = metrics.values_of(found, tenant=tenant, start=start, end=month_end(m0))
    assert len(queries) == 3
    shown = {cell.name: cell.value for cell in report.total.cells}
    assert shown["leads"] == totals[cm.LEADS]
    assert shown["valid"] == totals[cm.VALID]
    assert shown["won"] == totals[cm.WON]
    assert shown["median_days"] == totals[cm.MEDIAN_DAYS]
