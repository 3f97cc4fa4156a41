"""The service metrics report (F30): every figure per product line, per region, per week
and in total equals a recount from the ticket rows (without the report's code), with
minutes counted on the calendar and in working hours; the links carry the ticket list's
filters; the CSV carries the same figures."""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from crm.tenancy import tenant_context
from service_feedback import report as reports
from service_feedback.models import ServiceSettings, Ticket
from service_feedback.services import settings_for
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db

URL = reverse("service_report:service")
SHANGHAI = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 3, 2), date(2026, 3, 29)  # four weeks, Monday to Sunday
RANGE = {"opened_from": START.isoformat(), "opened_to": END.isoformat()}
LINES = ("彩超", "CT", "内镜", "监护仪", "")
PROVINCES = ("江苏", "浙江", "上海", "")
FAULTS = ("E-201", "E-305", "")
PHONES = ("13800000001", "13800000002", "13800000003")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def set_working_hours(side, on: bool) -> None:
    with tenant_context(side.tenant):
        settings = settings_for(side.tenant)
        ServiceSettings.objects.filter(pk=settings.pk).update(working_hours_only=on)


def build_mix(side, *, seed=7, count=70) -> None:
    """Tickets from a week before the period to its last day: matched to three customers
    (so fault codes repeat), some unmatched, some not answered or not resolved, some with
    a refused duration, a few exactly at the 15-minute target."""
    rnd = random.Random(seed)
    for i, phone in enumerate(PHONES):
        customer_with_contact(side, f"医院{i}", phone=phone)
    first_day = START - timedelta(days=7)
    span = (END - first_day).days + 1
    for i in range(count):
        day = first_day + timedelta(days=rnd.randrange(span))
        opened = local(day, rnd.randrange(0, 24), rnd.randrange(60))
        first = resolved = None
        if rnd.random() < 0.85:
            first = opened + timedelta(minutes=rnd.choice([1, 5, 14, 15, 15, 16, 40, 300, 2000]))
        if rnd.random() < 0.6:
            resolved = opened + timedelta(minutes=rnd.randrange(30, 5000))
        if i % 17 == 3:
            resolved = opened - timedelta(hours=2)  # refused: before the opening
        upsert(
            side,
            f"T-{i}",
            opened_at=opened,
            first_response_at=first,
            resolved_at=resolved,
            status="resolved" if resolved else "open",
            phone=rnd.choice(PHONES) if rnd.random() < 0.8 else "13900009999",
            product_line=rnd.choice(LINES),
            province=rnd.choice(PROVINCES),
            fault_code=rnd.choice(FAULTS),
            subject="设备故障",
        )


# -- the recount, from the rows alone --------------------------------------------------------


def recount(side, start=START, end=END, target=15) -> dict:
    """{(group, key): figures} from the ticket rows, in plain Python."""
    with tenant_context(side.tenant):
        every = list(Ticket.objects.order_by("opened_at", "id"))
    since, until = local(start, 0), local(end + timedelta(days=1), 0)

    def is_repeat(t) -> bool:
        if t.customer_id is None or not t.fault_code:
            return False
        return any(
            p.customer_id == t.customer_id
            and p.fault_code == t.fault_code
            and t.opened_at - timedelta(days=30) <= p.opened_at
            and (p.opened_at < t.opened_at or (p.opened_at == t.opened_at and p.id < t.id))
            for p in every
            if p.pk != t.pk
        )

    groups = defaultdict(list)
    for t in every:
        if not since <= t.opened_at < until:
            continue
        opened_local = t.opened_at.astimezone(SHANGHAI).date()
        week = opened_local - timedelta(days=opened_local.weekday())
        for key in (("line", t.product_line), ("province", t.province), ("bucket", week)):
            groups[key].append(t)
        groups[("total", None)].append(t)
    out = {}
    for key, tickets in groups.items():
        clean = [t for t in tickets if not t.duration_issue]
        times = [t.resolution_minutes for t in clean if t.resolution_minutes is not None]
        out[key] = {
            "tickets": len(tickets),
            "responded": sum(t.first_response_minutes is not None for t in clean),
            "in_target": sum(
                t.first_response_minutes is not None and t.first_response_minutes <= target
                for t in clean
            ),
            "resolved": len(times),
            "mean_resolution": statistics.mean(times) if times else None,
            "median_resolution": statistics.median(times) if times else None,
            "repeats": sum(is_repeat(t) for t in tickets),
            "duration_issues": len(tickets) - len(clean),
        }
    return out


def report_figures(report) -> dict:
    out = {}
    for group, rows in (
        ("line", report.product_lines),
        ("province", report.provinces),
        ("bucket", report.trend),
    ):
        for row in rows:
            key = row.key.split(":", 1)[1]
            if group == "bucket":
                key = date.fromisoformat(key)
            out[(group, key)] = row
    out[("total", None)] = report.total
    return out


def assert_matches(report, expected: dict) -> None:
    found = report_figures(report)
    assert set(found) == set(expected)
    for key, figures in expected.items():
        row = found[key]
        for name, value in figures.items():
            cell = row.cell(name)
            if value is None or isinstance(value, float):
                assert cell.value == pytest.approx(value), (key, name)
            else:
                assert cell.value == value, (key, name)
        responded, tickets = figures["responded"], figures["tickets"]
        rate = row.cell("in_target_rate").value
        assert rate == (pytest.approx(figures["in_target"] / responded) if responded else None)
        assert row.cell("repeat_rate").value == pytest.approx(figures["repeats"] / tickets)


@pytest.mark.parametrize("working_hours", [False, True], ids=["calendar", "working-hours"])
def test_every_figure_matches_a_recount_from_the_rows(world, en, working_hours):
    set_working_hours(world.a, working_hours)
    build_mix(world.a)
    response = en(world.a.manager).get(URL, RANGE)
    assert response.status_code == 200
    report = response.context["report"]
    assert report.working_hours_only is working_hours
    expected = recount(world.a)
    # The mix covers every kind of row: repeats, refused durations, blank lines and regions.
    total = expected[("total", None)]
    assert total["repeats"] and total["duration_issues"] and total["in_target"]
    assert ("line", "") in expected and ("province", "") in expected
    assert len(report.trend) == 4
    assert_matches(report, expected)


def test_working_hours_change_what_is_within_target(world, en):
    """Friday 17:50 → Monday 09:10: 20 working minutes (out of target), 3 days on the
    calendar; Friday 17:55 → Monday 09:05: 10 working minutes (within)."""
    set_working_hours(world.a, True)
    friday, monday = date(2026, 3, 6), date(2026, 3, 9)
    upsert(world.a, "W-1", opened_at=local(friday, 17, 50), first_response_at=local(monday, 9, 10))
    upsert(world.a, "W-2", opened_at=local(friday, 17, 55), first_response_at=local(monday, 9, 5))
    report = en(world.a.manager).get(URL, RANGE).context["report"]
    assert report.total.cell("responded").value == 2
    assert report.total.cell("in_target").value == 1
    with tenant_context(world.a.tenant):
        minutes = dict(Ticket.objects.values_list("external_id", "first_response_minutes"))
    assert minutes == {"W-1": 20, "W-2": 10}


def test_the_target_comes_from_the_service_settings(world, en):
    with tenant_context(world.a.tenant):
        settings = settings_for(world.a.tenant)
        ServiceSettings.objects.filter(pk=settings.pk).update(first_response_minutes=30)
    day = date(2026, 3, 10)
    for i, minutes in enumerate((10, 30, 31)):
        upsert(
            world.a,
            f"S-{i}",
            opened_at=local(day, 10),
            first_response_at=local(day, 10) + timedelta(minutes=minutes),
        )
    report = en(world.a.manager).get(URL, RANGE).context["report"]
    assert report.target_minutes == 30
    assert report.total.cell("in_target").value == 2
    assert "first_response_max=30" in report.total.cell("in_target").url


def test_a_repeat_needs_the_same_customer_and_fault_within_30_days(world, en):
    customer_with_contact(world.a, "医院A", phone="13800000001")
    customer_with_contact(world.a, "医院B", phone="13800000002")
    base = local(date(2026, 3, 20), 10)
    rows = [
        ("R-0", base - timedelta(days=30, minutes=1), "13800000001", "E-201"),  # too early
        ("R-1", base, "13800000001", "E-201"),  # not a repeat: R-0 is 30 d 1 min before
        ("R-2", base + timedelta(days=1), "13800000001", "E-201"),  # repeat of R-1
        ("R-3", base + timedelta(days=2), "13800000001", "E-305"),  # other fault
        ("R-4", base + timedelta(days=2), "13800000002", "E-201"),  # other customer
        ("R-5", base + timedelta(days=3), "13900009999", "E-201"),  # unmatched
        ("R-6", base + timedelta(days=3), "13900009999", "E-201"),  # unmatched
        ("R-7", base + timedelta(days=4), "13800000002", ""),  # no fault code
        ("R-8", base + timedelta(days=5), "13800000002", ""),  # no fault code
        ("R-9", base + timedelta(days=6), "13800000002", "E-410"),
        ("R-10", base + timedelta(days=6), "13800000002", "E-410"),  # same instant: repeat
    ]
    for external_id, opened, phone, fault in rows:
        upsert(world.a, external_id, opened_at=opened, phone=phone, fault_code=fault)
    report = en(world.a.manager).get(URL, RANGE).context["report"]
    assert report.total.cell("repeats").value == 2
    with tenant_context(world.a.tenant):
        repeats = Ticket.objects.filter(reports.repeat_q()).order_by("opened_at")
        assert list(repeats.values_list("external_id", flat=True)) == ["R-2", "R-10"]


def test_every_figure_links_to_the_ticket_list_with_its_filters(world, en):
    build_mix(world.a)
    report = en(world.a.manager).get(URL, RANGE).context["report"]
    row = next(r for r in report.provinces if r.label == "江苏")
    cell = row.cell("repeats")
    parts = urlsplit(cell.url)
    assert parts.path == "/service/tickets/"
    assert parse_qs(parts.query) == {
        "opened_from": [START.isoformat()],
        "opened_to": [END.isoformat()],
        "region": ["江苏"],
        "repeat": ["yes"],
    }
    blank = next(r for r in report.product_lines if r.key == "product_line:")
    assert parse_qs(urlsplit(blank.cell("tickets").url).query)["product_line"] == ["-"]
    issues = report.data_quality
    assert parse_qs(urlsplit(issues.url).query)["quality"] == ["duration"]
    # A week's link covers its days.
    week = report.trend[1]
    query = parse_qs(urlsplit(week.cell("tickets").url).query)
    assert query["opened_from"] == ["2026-03-09"] and query["opened_to"] == ["2026-03-15"]
    # The definitions the list filters by give back the counted rows.
    with tenant_context(world.a.tenant):
        in_range = Ticket.objects.filter(
            opened_at__gte=local(START, 0), opened_at__lt=local(END + timedelta(days=1), 0)
        )
        for name, q in (
            ("responded", reports.responded_q()),
            ("in_target", reports.in_target_q(15)),
            ("resolved", reports.resolved_q()),
            ("repeats", reports.repeat_q()),
            ("duration_issues", reports.duration_issue_q()),
        ):
            assert in_range.filter(q).count() == report.total.cell(name).value, name
    page = en(world.a.manager).get(URL, RANGE)
    assert 'data-testid="data-quality"' in page.text


def test_the_csv_exports_carry_the_same_figures(world, en):
    build_mix(world.a)
    client = en(world.a.manager)
    report = client.get(URL, RANGE).context["report"]
    for table, rows in (
        ("product_line", report.product_lines),
        ("province", report.provinces),
        ("trend", report.trend),
    ):
        response = client.get(URL, {**RANGE, "_export": "csv", "table": table})
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        lines = list(csv.reader(io.StringIO(body)))
        assert lines[0][1] == "tickets"
        assert len(lines) == 1 + len(rows) + 1
        for line, row in zip(lines[1:], [*rows, report.total], strict=True):
            assert line[0] == row.label
            assert int(line[1]) == row.cell("tickets").value
            mean = row.cell("mean_resolution").value
            assert line[6] == ("" if mean is None else f"{mean:.1f}")
            assert int(line[8]) == row.cell("repeats").value
    refused = client.get(URL, {**RANGE, "_export": "csv", "table": "nope"})
    assert refused.status_code == 400


def test_a_period_without_tickets_shows_empty_tables(world, en):
    response = en(world.a.manager).get(URL, RANGE)
    assert response.status_code == 200
    report = response.context["report"]
    assert report.total.cell("tickets").value == 0
    assert report.total.cell("in_target_rate").text == "—"
    assert report.total.cell("tickets").url == ""
    assert 'data-testid="empty-province"' in response.text
    assert "service-chart-data" not in response.text


def test_every_figure_opens_exactly_its_tickets_in_the_list(world, en):
    """Follow each number's link into the ticket list: the list counts the same rows."""
    build_mix(world.a)
    client = en(world.a.manager)
    report = client.get(URL, RANGE).context["report"]
    rows = [report.total, *report.provinces[:3], *report.product_lines[:3], *report.trend[:2]]
    checked = 0
    for row in rows:
        for name in ("tickets", "responded", "in_target", "resolved", "repeats"):
            cell = row.cell(name)
            if not cell.url:
                continue
            page = client.get(cell.url)
            assert page.status_code == 200, cell.url
            assert page.context["count"] == cell.value, (row.label, name, cell.url)
            checked += 1
    assert checked >= 20
