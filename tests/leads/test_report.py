"""The lead-quality report (F36): every figure on the page and in the CSV recounted in
Python from the rows, the links to the lead list, the range, roles and the query budget."""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Membership, Role
from crm.tenancy import tenant_context
from customers.models import Interaction, Preset, PresetKind
from leads.models import ChannelType, InvalidReason, Lead, SourceGrade, Verification
from leads.reports.quality import duration_text
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead

pytestmark = pytest.mark.django_db

URL = reverse("lead_reports:lead_quality")
LIST = reverse("leads:list")
SHANGHAI = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 3, 2), date(2026, 3, 8)
RANGE = {"created_from": START.isoformat(), "created_to": END.isoformat()}
VALID = {Verification.VALID_VISIT, Verification.VALID_MORE_INFO}
INVALID = {Verification.INVALID_CONTACT, Verification.INVALID_NOT_TARGET}
COUNTS = ("delivered", "verified_24h", "valid_24h", "invalid", "duplicates", "suspect")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


# -- the fixture: a realistic week of leads ------------------------------------------------


class Mix:
    """Builds leads and follow-ups in tenant a; remembers what it made."""

    def __init__(self, world):
        self.world = world
        self.tenant = world.a.tenant
        self.web = make_channel(self.tenant, name="官网表单")
        self.douyin = make_channel(self.tenant, name="抖音线索", type=ChannelType.DOUYIN)
        self.quiet = make_channel(self.tenant, name="展会扫码", type=ChannelType.TRADE_SHOW_QR)
        self.retired = make_channel(self.tenant, name="旧渠道", is_active=False)
        self.rep1 = world.a.rep
        self.rep2 = MembershipFactory(
            tenant=self.tenant, role=Role.REP, user__username="alpha-rep2", user__first_name="李强"
        )
        with tenant_context(self.tenant):
            self.reasons = [
                InvalidReason.objects.create(tenant=self.tenant, name=name, position=i)
                for i, name in enumerate(["空号", "非目标行业", "重复提交"], start=1)
            ]
            self.action = Preset.objects.create(
                tenant=self.tenant, kind=PresetKind.ACTION, name="发送资料"
            )
        self.leads: list[Lead] = []

    def lead(self, created_at, *, channel=None, grade=SourceGrade.B, owner=None, **fields):
        lead = make_lead(
            self.tenant,
            channel or self.web,
            created_at=created_at,
            source_grade=grade,
            owner=owner,
            company=fields.pop("company", f"公司{len(self.leads)}"),
            **fields,
        )
        self.leads.append(lead)
        return lead

    def verify(self, lead, after: timedelta, outcome, reason=None):
        with tenant_context(self.tenant):
            lead.verification = outcome
            lead.verified_at = lead.created_at + after
            lead.verified_by = lead.owner
            lead.invalid_reason = reason
            lead.save(
                update_fields=["verification", "verified_at", "verified_by", "invalid_reason"]
            )

    def assign_and_touch(self, lead, assigned_after: timedelta, touched_after: timedelta | None):
        with tenant_context(self.tenant):
            lead.assigned_at = lead.created_at + assigned_after
            fields = ["assigned_at"]
            if touched_after is not None:
                lead.first_touch_at = lead.last_touch_at = lead.assigned_at + touched_after
                lead.touch_count = 1
                fields += ["first_touch_at", "last_touch_at", "touch_count"]
            lead.save(update_fields=fields)

    def follow_up(self, lead, by, after_verified: timedelta):
        with tenant_context(self.tenant):
            Interaction.objects.create(
                tenant=self.tenant,
                lead=lead,
                by=by,
                at=lead.verified_at + after_verified,
                channel="phone",
                next_action=self.action,
                next_action_due=date(2026, 4, 1),
            )


def build_mix(world) -> Mix:
    mix = Mix(world)
    rng = random.Random(36)
    channels = [mix.web, mix.douyin]
    grades = list(SourceGrade.values)
    owners = [mix.rep1, mix.rep2, None]
    outcomes = [*Verification.values, ""]
    originals = []
    for day in range(7):
        for n in range(5):
            created = local(START + timedelta(days=day), 8 + 2 * n, rng.randrange(60))
            revisit_of = rng.choice(originals) if originals and rng.random() < 0.2 else None
            owner = rng.choice(owners)
            lead = mix.lead(
                created,
                channel=rng.choice(channels),
                grade=rng.choice(grades),
                owner=owner,
                revisit_of=revisit_of,
                is_suspect=rng.random() < 0.2,
                suspect_reasons=["x"],
            )
            if revisit_of is None:
                originals.append(lead)
            if owner is None:
                continue
            mix.assign_and_touch(
                lead,
                timedelta(minutes=rng.randrange(1, 30)),
                rng.choice([None, timedelta(minutes=rng.randrange(5, 600))]),
            )
            outcome = rng.choice(outcomes)
            if not outcome:
                continue
            reason = rng.choice([*mix.reasons, None]) if outcome in INVALID else None
            mix.verify(lead, timedelta(hours=rng.choice([1, 5, 23, 30, 50])), outcome, reason)
            if outcome in VALID:
                for _i in range(rng.randrange(3)):
                    by = owner if rng.random() < 0.8 else rng.choice([mix.rep1, mix.rep2])
                    mix.follow_up(lead, by, timedelta(hours=rng.choice([-2, 2, 48, 80])))

    # The edges, by hand.
    day = START + timedelta(days=2)
    exactly = mix.lead(local(day, 9), owner=mix.rep1, grade=SourceGrade.A)
    mix.verify(exactly, timedelta(hours=24), Verification.VALID_VISIT)  # within 24 h
    mix.follow_up(exactly, mix.rep1, timedelta(hours=72))  # within 72 h
    late = mix.lead(local(day, 10), owner=mix.rep1, grade=SourceGrade.A)
    mix.verify(late, timedelta(hours=24, minutes=1), Verification.VALID_MORE_INFO)
    mix.follow_up(late, mix.rep1, timedelta(hours=72, minutes=1))  # too late
    mix.follow_up(late, mix.rep2, timedelta(hours=1))  # not its owner
    mix.follow_up(late, mix.rep1, timedelta(minutes=-1))  # before the verification
    mix.assign_and_touch(late, timedelta(minutes=3), timedelta(hours=2))
    # A former rep (seat deactivated) still owns a lead in the range.
    former = MembershipFactory(
        tenant=mix.tenant,
        role=Role.REP,
        is_active=False,
        user__username="alpha-former",
        user__first_name="赵敏",
    )
    kept = mix.lead(local(day, 11), owner=former, channel=mix.douyin, grade=SourceGrade.C)
    mix.assign_and_touch(kept, timedelta(minutes=1), timedelta(minutes=42))
    mix.verify(kept, timedelta(hours=2), Verification.VALID_VISIT)
    mix.follow_up(kept, former, timedelta(hours=3))
    # A retired channel that delivered in the range still shows.
    mix.lead(local(day, 12), channel=mix.retired, is_suspect=True)
    # Local-day edges: the last evening is in; the minutes around the range are out.
    mix.lead(local(END, 23, 30), channel=mix.douyin, grade=SourceGrade.C)
    mix.lead(local(END + timedelta(days=1), 0, 0), company="just after")
    mix.lead(local(START, 0, 0) - timedelta(minutes=1), company="just before")
    # The other tenant's lead in the range.
    make_lead(world.b.tenant, created_at=local(day, 9), company="Beta Ltd")
    return mix


# -- the independent recount ------------------------------------------------------------------


def recount(mix: Mix, start=START, end=END, tz=SHANGHAI) -> dict:
    """Every figure of the report, from the rows, without the report's code."""
    with tenant_context(mix.tenant):
        leads = list(Lead.objects.select_related("channel", "invalid_reason"))
        interactions = list(Interaction.objects.all())
    leads = [x for x in leads if start <= x.created_at.astimezone(tz).date() <= end]
    follow_ups = defaultdict(list)
    for i in interactions:
        follow_ups[i.lead_id].append(i)

    def figures(rows):
        within = [
            x
            for x in rows
            if x.verified_at is not None and x.verified_at - x.created_at <= timedelta(hours=24)
        ]
        return {
            "delivered": len(rows),
            "verified_24h": len(within),
            "valid_24h": sum(1 for x in within if x.verification in VALID),
            "invalid": sum(1 for x in rows if x.verification in INVALID),
            "duplicates": sum(1 for x in rows if x.revisit_of_id is not None),
            "suspect": sum(1 for x in rows if x.is_suspect),
        }

    def followed(x):
        return x.verification in VALID and any(
            i.by_id == x.owner_id and x.verified_at <= i.at <= x.verified_at + timedelta(hours=72)
            for i in follow_ups[x.id]
        )

    shown_channels = {x.channel for x in leads} | {
        c for c in (mix.web, mix.douyin, mix.quiet, mix.retired) if c.is_active
    }
    result = {
        "channel": {
            f"channel-{c.pk}": (c.name, figures([x for x in leads if x.channel_id == c.pk]))
            for c in shown_channels
        },
        "grade": {
            f"grade-{g}": (g, figures([x for x in leads if x.source_grade == g]))
            for g in SourceGrade.values
        },
        "total": figures(leads),
        "reason": {},
        "rep": {},
    }
    invalid = [x for x in leads if x.verification in INVALID]
    for reason in {x.invalid_reason for x in invalid}:
        rows = [x for x in invalid if x.invalid_reason == reason]
        columns = {f"channel-{c.pk}": 0 for c in shown_channels}
        columns |= {f"grade-{g}": 0 for g in SourceGrade.values}
        for x in rows:
            columns[f"channel-{x.channel_id}"] += 1
            columns[f"grade-{x.source_grade}"] += 1
        key = f"reason-{reason.pk if reason else 'none'}"
        result["reason"][key] = (reason.name if reason else "No reason given", len(rows), columns)
    for owner_id in {x.owner_id for x in leads if x.owner_id}:
        rows = [x for x in leads if x.owner_id == owner_id]
        valid = [x for x in rows if x.verification in VALID]
        touched = [x for x in rows if x.first_touch_at and x.assigned_at]
        result["rep"][f"rep-{owner_id}"] = {
            "valid": len(valid),
            "followed_up": sum(1 for x in valid if followed(x)),
            "touched": len(touched),
            "median": (
                statistics.median(x.first_touch_at - x.assigned_at for x in touched)
                if touched
                else None
            ),
        }
    return result


def rate_text(numerator, denominator) -> str:
    return "—" if not denominator else f"{numerator / denominator * 100:.1f}%"


# -- reading the page ------------------------------------------------------------------------


class Figures(HTMLParser):
    """{data-figure: (data-value, text, href)} of the page's figure cells."""

    def __init__(self):
        super().__init__()
        self.cells, self._current = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and "data-figure" in attrs:
            self._current = attrs["data-figure"]
            self.cells[self._current] = [attrs["data-value"], "", ""]
        elif tag == "a" and self._current:
            self.cells[self._current][2] = attrs["href"]

    def handle_endtag(self, tag):
        if tag == "td":
            self._current = None

    def handle_data(self, data):
        if self._current:
            self.cells[self._current][1] += data.strip()


def figures_of(response) -> dict[str, tuple[str, str, str]]:
    parser = Figures()
    parser.feed(response.content.decode())
    return {k: tuple(v) for k, v in parser.cells.items()}


def list_count(client, href) -> int:
    assert href.startswith(LIST + "?"), href
    response = client.get(href)
    assert response.status_code == 200
    return response.context["count"]


def csv_of(client, table, params=RANGE) -> list[list[str]]:
    response = client.get(URL, {**params, "_export": "csv", "table": table})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))


# -- every figure ------------------------------------------------------------------------------


def assert_figures_match(cells: dict, expected: dict) -> None:
    """Every figure of a page (figures_of) equals its recount, and nothing else is shown."""
    wanted = set()

    def check_count(key, value):
        wanted.add(key)
        shown, text, href = cells[key]
        assert int(shown) == value and text == str(value), (key, cells[key], value)
        assert bool(href) == bool(value), key  # a zero links nowhere

    def check_rate(key, numerator, denominator):
        wanted.add(key)
        shown, text, _href = cells[key]
        assert text == rate_text(numerator, denominator), key
        if denominator:
            assert float(shown) == pytest.approx(numerator / denominator), key
        else:
            assert shown == "", key

    tables = [*expected["channel"].items(), *expected["grade"].items()]
    tables.append(("total", ("", expected["total"])))
    for key, (_label, figures) in tables:
        for name in COUNTS:
            check_count(f"{key}:{name}", figures[name])
        check_rate(f"{key}:valid_rate", figures["valid_24h"], figures["delivered"])
    for key, (_label, total, columns) in expected["reason"].items():
        check_count(f"{key}:invalid", total)
        for column, value in columns.items():
            check_count(f"{key}:{column}", value)
    for key, rep in expected["rep"].items():
        check_count(f"{key}:valid", rep["valid"])
        check_count(f"{key}:followed_up", rep["followed_up"])
        check_rate(f"{key}:follow_up_rate", rep["followed_up"], rep["valid"])
        check_count(f"{key}:touched", rep["touched"])
        wanted.add(f"{key}:median_first_touch")
        shown, text, _href = cells[f"{key}:median_first_touch"]
        if rep["median"] is None:
            assert (shown, text) == ("", "—")
        else:
            assert float(shown) == pytest.approx(rep["median"].total_seconds())
    assert set(cells) == wanted  # nothing shown that was not recounted


def test_every_figure_on_the_page_matches_a_recount_from_the_rows(world, en):
    mix = build_mix(world)
    expected = recount(mix)
    client = en(world.a.manager)
    response = client.get(URL, RANGE)
    assert response.status_code == 200
    cells = figures_of(response)
    assert_figures_match(cells, expected)

    # The mix is not degenerate: every kind of figure is non-zero somewhere.
    total = expected["total"]
    assert all(total[name] for name in COUNTS), total
    assert total["delivered"] == len(mix.leads) - 2  # the two outside the range
    assert len(expected["reason"]) >= 3 and "reason-none" in expected["reason"]
    reps = expected["rep"].values()
    assert any(0 < r["followed_up"] < r["valid"] for r in reps)
    assert all(r["median"] is not None for r in reps)
    # The inactive channel that delivered is shown; the quiet active one with zeros too.
    assert f"channel-{mix.retired.pk}:delivered" in cells
    assert cells[f"channel-{mix.quiet.pk}:valid_rate"][1] == "—"
    # The edges counted as the definitions say.
    assert f"rep-{mix.rep1.pk}:followed_up" in cells


def test_the_edges_of_24_and_72_hours_count_as_defined(world, en):
    mix = Mix(world)
    day = START + timedelta(days=1)
    exactly = mix.lead(local(day, 9), owner=mix.rep1)
    mix.verify(exactly, timedelta(hours=24), Verification.VALID_VISIT)
    mix.follow_up(exactly, mix.rep1, timedelta(hours=72))
    late = mix.lead(local(day, 10), owner=mix.rep1)
    mix.verify(late, timedelta(hours=24, minutes=1), Verification.VALID_VISIT)
    mix.follow_up(late, mix.rep1, timedelta(hours=72, minutes=1))
    mix.follow_up(late, mix.rep2, timedelta(hours=1))
    mix.follow_up(late, mix.rep1, timedelta(minutes=-1))
    cells = figures_of(en(world.a.manager).get(URL, RANGE))
    assert cells["total:delivered"][0] == "2"
    assert cells["total:verified_24h"][0] == "1"
    assert cells["total:valid_rate"][1] == "50.0%"
    assert cells[f"rep-{mix.rep1.pk}:valid"][0] == "2"
    assert cells[f"rep-{mix.rep1.pk}:followed_up"][0] == "1"
    assert cells[f"rep-{mix.rep1.pk}:follow_up_rate"][1] == "50.0%"


def test_every_figure_links_to_exactly_its_rows(world, en):
    build_mix(world)
    client = en(world.a.manager)
    cells = figures_of(client.get(URL, RANGE))
    linked = 0
    for key, (value, _text, href) in cells.items():
        if not href:
            continue
        figure = key.rsplit(":", 1)[1]
        shown = list_count(client, href)
        if figure == "valid_rate":
            assert shown == int(cells[key.replace("valid_rate", "valid_24h")][0]), key
        elif figure == "follow_up_rate":
            assert shown == int(cells[key.replace("follow_up_rate", "followed_up")][0]), key
        elif figure == "median_first_touch":
            assert shown == int(cells[key.replace("median_first_touch", "touched")][0]), key
        else:
            assert shown == int(value), key
        linked += 1
    assert linked > 60  # the mix links most figures


class FilterForm(HTMLParser):
    """The values the lead list's filter form would submit as it is shown."""

    def __init__(self):
        super().__init__()
        self.values, self._in_form, self._select = {}, False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("data-testid") == "lead-filters":
            self._in_form = True
        elif not self._in_form:
            return
        elif tag == "input" and attrs.get("name") and attrs.get("value"):
            self.values[attrs["name"]] = attrs["value"]
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select and "selected" in attrs and attrs["value"]:
            self.values[self._select] = attrs["value"]

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None


def test_the_list_opened_from_a_figure_shows_and_keeps_its_filters(world, en):
    """Every filter of a figure's link is shown selected in the list's filter form, so
    submitting the form as shown (to narrow further) keeps exactly the same rows."""
    build_mix(world)
    client = en(world.a.manager)
    cells = figures_of(client.get(URL, RANGE))
    hrefs = {href for _value, _text, href in cells.values() if href}
    assert len(hrefs) > 40
    for href in sorted(hrefs):
        response = client.get(href)
        parser = FilterForm()
        parser.feed(response.content.decode())
        linked = dict(parse_qsl(urlsplit(href).query))
        assert parser.values == linked, href
        assert client.get(LIST, parser.values).context["count"] == response.context["count"]


def test_the_csv_exports_carry_the_same_figures(world, en):
    mix = build_mix(world)
    expected = recount(mix)
    client = en(world.a.manager)
    header = [
        "delivered",
        "verified within 24 h",
        "valid within 24 h",
        "24 h valid rate",
        "invalid",
        "duplicates (revisits)",
        "suspect",
    ]

    def figure_row(label, f):
        rate = rate_text(f["valid_24h"], f["delivered"])
        counts = [str(f[n]) for n in COUNTS]
        return [label, *counts[:3], rate, *counts[3:]]

    rows = csv_of(client, "channel")
    assert rows[0] == ["channel", *header]
    want = sorted(figure_row(name, f) for name, f in expected["channel"].values())
    assert sorted(rows[1:-1]) == want
    assert rows[-1] == figure_row("All leads", expected["total"])

    rows = csv_of(client, "grade")
    assert rows[0] == ["source grade", *header]
    labels = dict(SourceGrade.choices)
    with_labels = [figure_row(str(labels[g]), f) for g, f in expected["grade"].values()]
    assert rows[1:-1] == with_labels
    assert rows[-1] == figure_row("All leads", expected["total"])

    rows = csv_of(client, "reason")
    assert rows[0][:2] == ["invalid reason", "invalid"]
    channels = (mix.web, mix.douyin, mix.quiet, mix.retired)
    names = {f"channel-{c.pk}": c.name for c in channels}
    assert len(rows) - 1 == len(expected["reason"])
    by_label = {row[0]: row for row in rows[1:]}
    for label, total, columns in expected["reason"].values():
        row = dict(zip(rows[0], by_label[label], strict=True))
        assert row["invalid"] == str(total)
        for key, value in columns.items():
            heading = names.get(key) or str(labels[key.removeprefix("grade-")])
            assert row[heading] == str(value), (label, heading)

    rows = csv_of(client, "rep")
    assert rows[0] == [
        "rep",
        "valid leads",
        "followed up within 72 h",
        "72 h follow-up rate",
        "assigned and touched",
        "median time to first touch (minutes)",
    ]
    with tenant_context(mix.tenant):
        names = {
            f"rep-{m.pk}": m.display_name
            for m in Membership.objects.filter(tenant=mix.tenant).select_related("user")
        }
    want = []
    for key, rep in expected["rep"].items():
        median = rep["median"]
        want.append(
            [
                names[key],
                str(rep["valid"]),
                str(rep["followed_up"]),
                rate_text(rep["followed_up"], rep["valid"]),
                str(rep["touched"]),
                "—" if median is None else f"{median.total_seconds() / 60:.1f}",
            ]
        )
    assert sorted(rows[1:]) == sorted(want)


def test_the_lead_lists_report_filters_split_the_leads_without_gaps(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    total = recount(mix)["total"]["delivered"]

    def count(**params):
        return list_count(client, f"{LIST}?{urlencode({**RANGE, **params})}")

    assert count(verified_24h="yes") + count(verified_24h="no") == total
    assert count(first_touch="yes") + count(first_touch="no") == total
    split = [count(verification=v) for v in ("valid", "invalid", "none")]
    assert sum(split) == total and all(split)
    valid = split[0]
    assert count(followed_up="yes") + count(followed_up="no") == valid
    outcomes = sum(count(verification=v) for v in Verification.values)
    assert outcomes == split[0] + split[1]
    assert sum(count(source_grade=g) for g in SourceGrade.values) == total


def test_durations_read_as_minutes_hours_and_days(english):
    assert duration_text(None) == "—"
    assert duration_text(timedelta(minutes=42, seconds=20)) == "42 min"
    assert duration_text(timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert duration_text(timedelta(days=1, hours=3, minutes=10)) == "1 d 3 h"


def test_an_unknown_csv_table_is_refused(world, login):
    response = login(world.a.manager).get(URL, {"_export": "csv", "table": "nope"})
    assert response.status_code == 400


def test_a_range_with_nothing_shows_dashes_and_no_links(world, en):
    make_channel(world.a.tenant, name="官网表单")
    cells = figures_of(en(world.a.manager).get(URL, RANGE))
    assert cells["total:delivered"] == ("0", "0", "")
    assert cells["total:valid_rate"] == ("", "—", "")
    assert not any(href for _v, _t, href in cells.values())


# -- the range -------------------------------------------------------------------------------


def test_it_defaults_to_the_last_30_days_up_to_today_in_the_tenants_zone(world, en):
    today = timezone.localdate(timezone=SHANGHAI)
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, created_at=local(today, 0, 1))
    make_lead(world.a.tenant, channel, created_at=local(today - timedelta(days=29), 0, 1))
    make_lead(world.a.tenant, channel, created_at=local(today - timedelta(days=30), 23, 59))
    response = en(world.a.manager).get(URL)
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.start, report.end) == (today - timedelta(days=29), today)
    assert f'value="{report.start:%Y-%m-%d}"' in response.text
    assert figures_of(response)["total:delivered"][0] == "2"
    assert "30 days" in response.text


def test_it_refuses_a_backwards_or_too_long_range_with_field_errors(world, en):
    client = en(world.a.manager)
    response = client.get(URL, {"created_from": "2026-03-08", "created_to": "2026-03-02"})
    assert response.status_code == 400
    assert response.context["report"] is None
    assert "The end date is before the start date." in response.text
    assert 'data-testid="error-created_to"' in response.text

    response = client.get(URL, {"created_from": "2025-03-01", "created_to": "2026-03-02"})
    assert response.status_code == 400
    assert 'data-testid="error-created_from"' in response.text
    assert "longer than 366 days" in response.text

    response = client.get(URL, {"created_from": "2026-02-30"})
    assert response.status_code == 400
    assert 'data-testid="error-created_from"' in response.text

    # 366 days exactly is allowed; so is one day.
    ok = client.get(URL, {"created_from": "2025-03-02", "created_to": "2026-03-02"})
    assert ok.status_code == 200 and ok.context["report"].days == 366
    one_day = client.get(URL, {"created_from": "2026-03-02", "created_to": "2026-03-02"})
    assert one_day.status_code == 200 and one_day.context["report"].days == 1

    csv_bad = client.get(
        URL, {"created_from": "2026-03-08", "created_to": "2026-03-02", "_export": "csv"}
    )
    assert csv_bad.status_code == 400


# -- who sees it ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MARKETING, Role.MANAGER, Role.ADMIN])
def test_marketing_managers_and_admins_see_it_and_find_it_in_the_menu(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    client = login(member)
    assert client.get(URL).status_code == 200
    assert f'href="{URL}"' in client.get(reverse("home"), follow=True).text


@pytest.mark.parametrize("role", [Role.REP, Role.SERVICE])
def test_reps_and_service_are_refused(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    client = login(member)
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"_export": "csv", "table": "rep"}).status_code == 403
    assert f'href="{URL}"' not in client.get(reverse("home"), follow=True).text


def test_it_counts_only_the_tenants_own_leads(world, en):
    build_mix(world)
    cells = figures_of(en(world.b.manager).get(URL, RANGE))
    assert cells["total:delivered"][0] == "1"


# -- cost ---------------------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_the_leads(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    client.get(URL, RANGE)  # warm-up (session, caches)
    with CaptureQueriesContext(connection) as few:
        client.get(URL, RANGE)
    rng = random.Random(7)
    extra_rep = MembershipFactory(tenant=mix.tenant, role=Role.REP, user__first_name="王五")
    for i in range(30):
        lead = mix.lead(
            local(START + timedelta(days=i % 7), 15),
            channel=rng.choice([mix.web, mix.douyin]),
            grade=rng.choice(SourceGrade.values),
            owner=rng.choice([mix.rep1, mix.rep2, extra_rep]),
            is_suspect=bool(i % 2),
        )
        mix.assign_and_touch(lead, timedelta(minutes=5), timedelta(minutes=i + 1))
        outcome = rng.choice(Verification.values)
        reason = rng.choice(mix.reasons) if outcome in INVALID else None
        mix.verify(lead, timedelta(hours=3), outcome, reason)
        if outcome in VALID:
            mix.follow_up(lead, lead.owner, timedelta(hours=5))
    with CaptureQueriesContext(connection) as many:
        client.get(URL, RANGE)
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    # Session, user, seats, the tenant transaction (savepoint, setting, release) and the
    # report's own: channels × grades, channels, reasons, reps, follow-ups, names.
    assert len(many) <= 14, [q["sql"][:90] for q in many.captured_queries]


def test_the_lead_list_keeps_its_query_count_with_the_report_filters(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    params = {
        **RANGE,
        "verification": "valid",
        "followed_up": "yes",
        "owner": mix.rep1.pk,
        "source_grade": "A",
    }
    client.get(LIST, params)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST, params)
    for i in range(10):
        lead = mix.lead(local(START, 16), owner=mix.rep1, grade=SourceGrade.A, company=f"x{i}")
        mix.verify(lead, timedelta(hours=1), Verification.VALID_VISIT)
        mix.follow_up(lead, mix.rep1, timedelta(hours=1))
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST, params)
    assert response.context["count"] >= 10
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
