"""The sales process report (/reports/process/, crm.views_process): per rep and for the
team, over a period and the previous one, every number linked to its rows; misses of
target marked; CSV; who may see what. The rows are the leads tests' hand-made week
(tests/leads/test_process_metrics.py: 2026-03-02 … 2026-03-08, tenant a)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import process
from crm.models import Role
from tests.factories import MembershipFactory
from tests.leads.test_process_metrics import BY_HAND, build

pytestmark = pytest.mark.django_db

URL = "/reports/process/"
RANGE = {"start": "2026-03-02", "end": "2026-03-08"}
RATES = {
    "leads.process_follow_up_72h": (
        "leads.process_followed_72h",
        "leads.process_follow_up_due",
    ),
    "leads.process_action_completion": (
        "leads.process_steps_on_time",
        "leads.process_steps_due",
    ),
}


class Cells(HTMLParser):
    """Every cell with a data-figure attribute, and the links inside it."""

    def __init__(self):
        super().__init__()
        self.cells: dict[str, dict] = {}
        self.current = None
        self.lines: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-line" in attrs:
            self.lines.append(attrs["data-line"])
        if "data-figure" in attrs:
            self.current = {**attrs, "links": {}}
            self.cells[attrs["data-figure"]] = self.current
        elif tag == "a" and self.current is not None and "data-link" in attrs:
            self.current["links"][attrs["data-link"]] = attrs["href"]

    def handle_endtag(self, tag):
        if tag == "td":
            self.current = None


def cells_of(response) -> Cells:
    parser = Cells()
    parser.feed(response.content.decode())
    return parser


def metrics_label(key: str):
    from crm.metrics import get_rate

    return get_rate(key).label


def link_query(href: str) -> tuple[str, dict]:
    parts = urlsplit(href)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def test_the_manager_sees_each_rep_and_the_team_with_every_number_linked(world, login):
    made = build(world)
    client = login(world.a.manager)
    response = client.get(URL, RANGE)
    assert response.status_code == 200
    found = cells_of(response)
    reps = {"rep1": world.a.rep.pk, "rep2": made.rep2.pk}
    assert set(found.lines) >= {f"rep-{pk}" for pk in reps.values()} | {"team"}
    for who, line in (*((n, f"rep-{pk}") for n, pk in reps.items()), (None, "team")):
        expected = BY_HAND[who]
        for rate, (numerator, denominator) in RATES.items():
            cell = found.cells[f"{line}:{rate}"]
            assert int(cell["data-numerator"]) == expected[numerator], (line, rate)
            assert int(cell["data-denominator"]) == expected[denominator], (line, rate)
            share = expected[numerator] / expected[denominator]
            assert float(cell["data-value"]) == pytest.approx(share)
            for kind, key in (("numerator", numerator), ("denominator", denominator)):
                path, query = link_query(cell["links"][kind])
                assert path == reverse("metric_rows", args=[key])
                assert query["start"] == "2026-03-02" and query["end"] == "2026-03-08"
                if who is None:
                    assert "rep" not in query
                else:
                    assert query["rep"] == str(reps[who])
                rows = client.get(cell["links"][kind])
                assert rows.status_code == 200 and rows.context["metric"].key == key
                assert rows.context["count"] == expected[key], (line, key)
        median = found.cells[f"{line}:leads.process_first_touch_median"]
        assert float(median["data-value"]) == expected["leads.process_first_touch_median"]
        assert "metrics/leads.process_first_touch_median/" in median["links"]["figure"]
    # rep1 follows up 2 of 5 leads within 72 h: below the 90 % target, marked.
    rep1 = f"rep-{reps['rep1']}"
    assert found.cells[f"{rep1}:leads.process_follow_up_72h"].get("data-missed") == "true"
    assert (
        found.cells[f"rep-{reps['rep2']}:leads.process_action_completion"].get("data-missed")
        is None
    )


def test_the_previous_period_is_beside_with_its_own_links(world, login):
    build(world)
    client = login(world.a.manager)
    found = cells_of(client.get(URL, RANGE))
    # 2026-02-23 … 03-01: rep1's lead assigned on 1 March at 23:59, touched 6 min later.
    rep1 = f"rep-{world.a.rep.pk}"
    assigned = found.cells[f"{rep1}:leads.process_assigned:previous"]
    assert assigned["data-value"] == "1"
    _path, query = link_query(assigned["links"]["figure"])
    assert (query["start"], query["end"]) == ("2026-02-23", "2026-03-01")
    median = found.cells[f"{rep1}:leads.process_first_touch_median:previous"]
    assert float(median["data-value"]) == 6.0


def test_a_rep_sees_their_own_line_and_the_team_only(world, login):
    made = build(world)
    response = login(world.a.rep).get(URL, RANGE)
    assert response.status_code == 200
    found = cells_of(response)
    assert set(found.lines) == {f"rep-{world.a.rep.pk}", "team"}
    assert f"rep-{made.rep2.pk}:leads.process_assigned" not in found.cells
    team = found.cells["team:leads.process_follow_up_72h"]
    assert int(team["data-denominator"]) == BY_HAND[None]["leads.process_follow_up_due"]


@pytest.mark.parametrize("role", [Role.SERVICE, Role.MARKETING])
def test_service_and_marketing_are_refused(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    assert login(member).get(URL).status_code == 403
    assert login(member).get(URL, {**RANGE, "_export": "csv"}).status_code == 403


def test_the_default_period_is_the_last_four_full_weeks(world, login):
    response = login(world.a.manager).get(URL)
    assert response.status_code == 200
    today = timezone.localdate(timezone=world.a.tenant.tzinfo)
    start, end = process.default_period(today)
    assert end.weekday() == 6 and end < today <= end + timedelta(days=7)
    assert (end - start).days == 27 and start.weekday() == 0
    report = response.context["report"]
    assert (report.start, report.end) == (start, end)
    assert (report.previous_start, report.previous_end) == (
        start - timedelta(days=28),
        start - timedelta(days=1),
    )


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-03-08", "end": "2026-03-02"},
        {"start": "2026-03-32", "end": "2026-04-02"},
        {"start": "2024-01-01", "end": "2026-03-02"},
    ],
)
def test_a_bad_period_is_a_400_with_its_message(world, login, params):
    client = login(world.a.manager)
    response = client.get(URL, params)
    assert response.status_code == 400
    assert b"invalid-feedback" in response.content
    csv_response = client.get(URL, {**params, "_export": "csv"})
    assert csv_response.status_code == 400 and csv_response.content
    assert client.get(URL, {**RANGE, "_export": "xlsx"}).status_code == 400


def test_the_csv_has_a_line_per_rep_and_the_team(world, login):
    made = build(world)
    response = login(world.a.manager).get(URL, {**RANGE, "_export": "csv"})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, *lines = rows
    by_name = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert len(lines) == 3  # the two reps and the team
    rep2 = by_name[made.rep2.display_name]
    rate = process.process_rates()[0]
    assert rate.key == "leads.process_action_completion"
    label = str(rate.label)
    assert rep2[label] == "100.0%"
    assert header.index(label) + 2 < len(header)
    team = dict(zip(header, lines[-1], strict=True))
    follow_up = str(metrics_label("leads.process_follow_up_72h"))
    assert team[follow_up] == "37.5%"  # 3 of 8
    assert [team[h] for h in header[header.index(follow_up) + 1 :][:2]] == ["3", "8"]
    median = str(process.process_figures()[0].label)
    assert team[median] == "31.0"


def test_the_page_reads_a_bounded_number_of_queries(world, login, django_assert_max_num_queries):
    build(world)
    for i in range(6):
        MembershipFactory(tenant=world.a.tenant, role=Role.REP, user__username=f"alpha-more{i}")
    client = login(world.a.manager)
    with django_assert_max_num_queries(30):
        assert client.get(URL, RANGE).status_code == 200


def test_another_tenants_rows_never_show(world, login):
    build(world)
    found = cells_of(login(world.b.manager).get(URL, RANGE))
    # Tenant b: one lead, followed up within the hour; its next step open past its day.
    follow_up = found.cells["team:leads.process_follow_up_72h"]
    assert (follow_up["data-numerator"], follow_up["data-denominator"]) == ("1", "1")
    steps = found.cells["team:leads.process_action_completion"]
    assert (steps["data-numerator"], steps["data-denominator"]) == ("0", "1")
    assert found.lines == [f"rep-{world.b.rep.pk}", "team"]


def test_the_team_is_the_reps_added_up_in_one_grouped_query_per_family(world):
    """`process.read`: one grouped query per family of the group's metrics, and one more
    for each family with a median (the team's counts are the reps' added up, not counted
    again), with the same figures as `values_of` gives the team."""
    from datetime import date

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm import metrics
    from crm.tenancy import tenant_context

    build(world)
    tenant = world.a.tenant
    start, end = date(2026, 3, 2), date(2026, 3, 8)
    needed = process._needed(process.process_rates(), process.process_figures())
    families = metrics._families(needed)
    with_median = [f for f in families if any(m.aggregate == metrics.MEDIAN for m in f)]
    with tenant_context(tenant):
        with CaptureQueriesContext(connection) as queries:
            found = process.read(tenant, start, end)
        team = metrics.values_of(needed, tenant=tenant, start=start, end=end)
    assert len(queries) == len(families) + len(with_median)
    assert found.team == team
