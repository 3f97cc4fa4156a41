"""The lead-quality report (F36): every figure on the page and in the CSV recounted in
Python from the rows, and the links from each figure to the lead list.

The range, roles and the query budget: test_report_access.py."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from crm.models import Membership
from crm.tenancy import tenant_context
from leads.models import SourceGrade, Verification
from leads.reports.quality import duration_text
from tests.leads.factories import make_channel

# The mix and the recount live in report_helpers; test_report_metrics and
# test_report_rollups import them from here too.
from tests.leads.report_helpers import (
    COUNTS,
    END,  # noqa: F401 (imported from here by the other report tests)
    LIST,
    RANGE,
    SHANGHAI,  # noqa: F401 (imported from here by the other report tests)
    START,
    URL,
    Mix,
    build_mix,
    csv_of,
    figures_of,
    list_count,
    local,
    rate_text,
    recount,
)

pytestmark = pytest.mark.django_db


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
