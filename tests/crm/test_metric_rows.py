"""A figure's drill-down list (/reports/metrics/<key>/, crm.metric_rows): its rows are the
figure's (counted, summed, recounted by hand), filtered by region and rep, for the period
asked; who may read which; another tenant's ids; bad input; a constant query count; and
its CSV, streamed or written in the background."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from crm import exports, metrics
from crm.metric_rows import export_rows
from crm.metrics import COUNT, Metric, register_metric
from crm.models import Role
from crm.tables import csv_pieces
from crm.tenancy import tenant_context
from tests.crm.dashboard_helpers import (
    END,
    JS,
    PERIOD,
    PREVIOUS,
    PREVIOUS_TOTALS,
    REGIONS,
    REPS,
    SHANGHAI,
    START,
    ZJ,
    seed,
)
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead

pytestmark = pytest.mark.django_db


def url(key: str) -> str:
    return reverse("metric_rows", args=[key])


def csv_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def exported(client, key, **query) -> list[list[str]]:
    return csv_of(client.get(url(key), {**PERIOD, **query, "_export": "csv"}))


def shown(response) -> int:
    """The rows on the page."""
    return response.text.count('data-testid="metric-row"')


def recount(metric, table: list[list[str]]):
    """The figure from a CSV's rows alone: their number, or the sum of the `of` column."""
    rows = table[1:]
    if metric.aggregate == COUNT:
        return len(rows)
    paths = [column.path for column in metric.columns]
    index = paths.index(metric.of) if metric.of in paths else len(paths)
    return sum(Decimal(row[index]) for row in rows if row[index])


# -- the figure is its rows -----------------------------------------------------------------


def test_each_list_has_exactly_the_rows_of_its_figure(world, en):
    seed(world)
    client = en(world.a.manager)
    for key, (total, *_regions) in REGIONS.items():
        metric = metrics.get_metric(key)
        response = client.get(url(key), PERIOD)
        assert response.status_code == 200, key
        assert response.context["figure"] == total, key
        table = exported(client, key)
        assert recount(metric, table) == total, key
        if metric.aggregate == COUNT:
            assert response.context["count"] == total == shown(response), key
            assert f"{total} row" in response.text, key
        else:
            assert response.context["count"] == len(table) - 1 == shown(response), key
        assert str(metric.definition) in response.text


def test_the_rows_match_the_metrics_own_drill_down_and_a_hand_count(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    table = exported(client, "leads.valid_24h")
    ids = {row[0] for row in table[1:]}
    assert ids == {str(seeded.leads[name].public_id) for name in ("L1", "L4")}
    metric = metrics.get_metric("leads.valid_24h")
    with tenant_context(world.a.tenant):
        rows = metrics.drill_down(metric, tenant=world.a.tenant, start=START, end=END)
    assert {str(row[0]) for row in rows} == ids


def test_the_previous_period_and_the_edges_of_the_local_days(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    previous = {"start": PREVIOUS[0].isoformat(), "end": PREVIOUS[1].isoformat()}
    for key, total in PREVIOUS_TOTALS.items():
        assert client.get(url(key), previous).context["figure"] == total, key
    # The last second of 28 February and the first of 1 March, local time.
    day = {"start": "2026-02-28", "end": "2026-02-28"}
    assert client.get(url("leads.delivered"), day).context["count"] == 1
    table = exported(client, "leads.delivered", **day)
    assert [row[0] for row in table[1:]] == [str(seeded.leads["L8"].public_id)]
    first = client.get(url("leads.delivered"), {"start": "2026-03-01", "end": "2026-03-01"})
    assert first.context["count"] == 1


@pytest.mark.parametrize(
    "key", ["leads.delivered", "opportunities.won", "opportunities.won_amount", "service.tickets"]
)
def test_region_and_rep_filters_give_the_breakdowns_rows(world, en, key):
    seeded = seed(world)
    client = en(world.a.manager)
    metric = metrics.get_metric(key)
    for region, expected in zip((ZJ, JS, ""), REGIONS[key][1:], strict=True):
        response = client.get(url(key), {**PERIOD, "region": region})
        assert response.context["figure"] == expected, (key, region)
        assert recount(metric, exported(client, key, region=region)) == expected
    for rep, expected in zip((seeded.rep.pk, seeded.rep2.pk, ""), REPS[key], strict=True):
        response = client.get(url(key), {**PERIOD, "rep": rep})
        assert response.context["figure"] == expected, (key, rep)
        assert recount(metric, exported(client, key, rep=rep)) == expected


def test_region_and_rep_together_and_the_filters_shown_removable(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    response = client.get(url("leads.delivered"), {**PERIOD, "region": ZJ, "rep": seeded.rep.pk})
    assert response.context["count"] == 3
    assert 'data-testid="active-filter-region"' in response.text
    assert 'data-testid="remove-filter-rep"' in response.text
    assert seeded.rep.display_name in response.text
    removed = next(f["remove"] for f in response.context["active_filters"] if f["key"] == "rep")
    assert "rep=" not in removed and "region=" in removed
    none = client.get(url("leads.delivered"), {**PERIOD, "region": JS, "rep": seeded.rep.pk})
    assert none.context["count"] == 0
    assert 'data-testid="no-rows"' in none.text


def test_each_lead_opens_its_page_with_its_trail(world, en):
    seeded = seed(world)
    client = en(world.a.manager)
    response = client.get(url("leads.delivered"), {**PERIOD, "region": ZJ, "rep": seeded.rep.pk})
    lead = seeded.leads["L2"]
    link = reverse("leads:detail", args=[lead.public_id])
    assert f'href="{link}"' in response.text
    page = client.get(link)
    assert page.status_code == 200
    assert 'data-testid="timeline"' in page.text


def test_a_period_defaults_to_this_month_up_to_today(world, en):
    today = timezone.localdate(timezone=SHANGHAI)
    channel = make_channel(world.a.tenant)
    now = timezone.now()
    make_lead(world.a.tenant, channel, created_at=now)
    make_lead(world.a.tenant, channel, created_at=now - timedelta(days=400))
    response = en(world.a.manager).get(url("leads.delivered"))
    period = response.context["period"]
    assert (period.start, period.end) == (today.replace(day=1), today)
    assert response.context["count"] == 1
    week = en(world.a.manager).get(url("leads.delivered"), {"period": "week"})
    assert week.context["period"].start == today - timedelta(days=today.weekday())


# -- who reads what ---------------------------------------------------------------------------


def test_marketing_reads_the_figures_its_role_is_among_the_readers_of(world, en):
    """Who reads a figure is the metric's `roles` (crm.metrics.readable_by), the rule of
    the catalogue too: marketing is among the sales roles every sales figure names, and is
    refused a figure whose roles leave it out, its CSV included."""
    seed(world)
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    client = en(marketing)
    assert client.get(url("leads.delivered"), PERIOD).context["count"] == 6
    assert client.get(url("opportunities.won"), PERIOD).status_code == 200
    managers_only = replace(
        metrics.get_metric("leads.delivered"),
        key="zz.managers_only",
        roles=frozenset({Role.MANAGER, Role.ADMIN}),
    )
    register_metric(managers_only)
    try:
        assert client.get(url(managers_only.key), PERIOD).status_code == 403
        export = client.get(url(managers_only.key), {**PERIOD, "_export": "csv"})
        assert export.status_code == 403
        manager = en(world.a.manager)
        assert manager.get(url(managers_only.key), PERIOD).context["count"] == 6
    finally:
        metrics._registry.pop(managers_only.key)


def test_service_reads_the_service_figures_and_never_an_amount(world, en):
    seed(world)
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    client = en(agent)
    assert client.get(url("service.tickets"), PERIOD).context["count"] == 4
    for key in ("opportunities.won_amount", "opportunities.won", "leads.delivered"):
        assert client.get(url(key), PERIOD).status_code == 403, key
        assert client.get(url(key), {**PERIOD, "_export": "csv"}).status_code == 403, key


def test_a_rep_reads_only_their_own_rows_whatever_the_link_says(world, en):
    seeded = seed(world)
    client = en(seeded.rep2)
    for query in ({}, {"rep": seeded.rep.pk}, {"rep": ""}):
        response = client.get(url("leads.delivered"), {**PERIOD, **query})
        assert response.status_code == 200
        assert response.context["count"] == 2  # L4, L5
        assert 'data-testid="remove-filter-rep"' not in response.text
        assert len(exported(client, "leads.delivered", **query)) == 3
    assert client.get(url("opportunities.won_amount"), PERIOD).context["figure"] == Decimal("80000")


def test_a_rep_may_not_read_a_figure_without_reps(world, en):
    key = "tests.no_dimensions"
    register_metric(
        Metric(
            key=key,
            label="no dimensions",
            definition="every lead",
            rows=metrics.get_metric("leads.delivered").rows,
        )
    )
    try:
        seed(world)
        assert en(world.a.rep).get(url(key), PERIOD).status_code == 403
        manager = en(world.a.manager)
        assert manager.get(url(key), PERIOD).context["count"] == 6
        refused = manager.get(url(key), {**PERIOD, "region": ZJ})
        assert refused.status_code == 400
        assert "cannot be filtered by region" in refused.text
        assert manager.get(url(key), {**PERIOD, "region": ZJ, "_export": "csv"}).status_code == 400
    finally:
        metrics._registry.pop(key, None)


# -- tenants and bad input --------------------------------------------------------------------


def test_another_tenants_rep_or_an_unknown_key_is_404(world, en):
    seed(world)
    client = en(world.a.manager)
    for rep in (world.b.rep.pk, 10**12, "abc", "-1"):
        assert client.get(url("leads.delivered"), {**PERIOD, "rep": rep}).status_code == 404, rep
        assert (
            client.get(url("leads.delivered"), {**PERIOD, "rep": rep, "_export": "csv"}).status_code
            == 404
        )
    assert client.get(url("no.such.metric"), PERIOD).status_code == 404


def test_each_tenant_reads_its_own_rows(world, en):
    seed(world)
    b = en(world.b.manager)
    assert b.get(url("leads.delivered"), {**PERIOD, "region": ZJ}).context["count"] == 1
    assert b.get(url("opportunities.won_amount"), PERIOD).context["figure"] == Decimal("9")
    assert len(exported(b, "service.tickets")) == 2
    assert b.get(url("leads.delivered"), {**PERIOD, "rep": world.a.rep.pk}).status_code == 404


@pytest.mark.parametrize(
    "query,field",
    [
        ({"start": "2026-13-01", "end": "2026-03-31"}, "start"),
        ({"start": "2026-03-01", "end": "yesterday"}, "end"),
        ({"start": "2026-03-31", "end": "2026-03-01"}, "end"),
        ({"start": "2020-01-01", "end": "2026-03-01"}, "start"),
        ({"period": "decade"}, "period"),
    ],
)
def test_bad_dates_are_400_with_the_reason(world, en, query, field):
    client = en(world.a.manager)
    response = client.get(url("leads.delivered"), query)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    plain = client.get(url("leads.delivered"), {**query, "_export": "csv"})
    assert plain.status_code == 400
    assert plain["Content-Type"].startswith("text/plain")


def test_a_region_too_long_or_an_unknown_export_is_400(world, en):
    client = en(world.a.manager)
    assert client.get(url("leads.delivered"), {**PERIOD, "region": "省" * 101}).status_code == 400
    assert client.get(url("leads.delivered"), {**PERIOD, "_export": "xlsx"}).status_code == 400


# -- pages, query count, CSV --------------------------------------------------------------------


def _leads(tenant, count, *, owner=None):
    channel = make_channel(tenant)
    with tenant_context(tenant):
        base = timezone.make_aware(timezone.datetime(2026, 3, 2, 8, 0), SHANGHAI)
        for i in range(count):
            make_lead(
                tenant,
                channel,
                created_at=base + timedelta(hours=i),
                province=ZJ,
                owner=owner,
                company=f"公司{i:03d}",
            )


def test_pages_of_50_newest_first(world, en):
    _leads(world.a.tenant, 120)
    client = en(world.a.manager)
    pages = [client.get(url("leads.delivered"), {**PERIOD, "page": n}) for n in (1, 2, 3, 9)]
    assert [shown(p) for p in pages] == [50, 50, 20, 20]  # past the end: the last page
    assert all(p.context["count"] == 120 for p in pages)
    first = pages[0].text
    assert first.index("公司119") < first.index("公司118") < first.index("公司070")
    companies = [row[2] for row in exported(client, "leads.delivered")[1:]]
    assert companies == [f"公司{i:03d}" for i in range(119, -1, -1)]


def test_the_query_count_does_not_grow_with_the_rows(world, en):
    client = en(world.a.manager)
    _leads(world.a.tenant, 5, owner=world.a.rep)
    query = {**PERIOD, "region": ZJ, "rep": world.a.rep.pk}
    client.get(url("leads.delivered"), query)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url("leads.delivered"), query).context["count"] == 5
    _leads(world.a.tenant, 150, owner=world.a.rep)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url("leads.delivered"), query).context["count"] == 155
    assert len(many) == len(few) <= 14, [q["sql"] for q in many.captured_queries]
    for key in ("service.first_response_in_target", "opportunities.won_amount"):
        with CaptureQueriesContext(connection) as other:
            client.get(url(key), PERIOD)
        assert len(other) <= 14, key


def test_the_csv_has_the_lists_columns_with_translated_headings(world, login):
    seed(world)
    client = login(world.a.manager)  # Chinese, the default
    table = exported(client, "leads.delivered")
    metric = metrics.get_metric("leads.delivered")
    with translation.override("zh-hans"):
        assert table[0] == [str(c.label) for c in metric.columns]
    assert table[0][1] == "创建时间"
    assert len(table) == 7
    assert {row[4] for row in table[1:]} == {"官网表单"}


def test_a_formula_in_a_cell_is_not_run_by_a_spreadsheet(world, en):
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, created_at=timezone.now(), company="=HYPERLINK(1)")
    table = csv_of(en(world.a.manager).get(url("leads.delivered"), {"_export": "csv"}))
    assert table[1][2] == "'=HYPERLINK(1)"


def test_a_long_list_is_exported_in_the_background_with_the_same_rows(world, en, monkeypatch):
    seed(world)
    client = en(world.a.manager)
    monkeypatch.setattr(exports, "BACKGROUND_THRESHOLD", 3)
    response = client.get(url("leads.delivered"), {**PERIOD, "region": ZJ})
    assert not response.context["export_background"]
    response = client.get(url("leads.delivered"), PERIOD)
    assert response.context["export_background"]
    assert 'data-testid="export-background"' in response.text
    query = response.context["export_list_query"]
    streamed = exported(client, "leads.delivered")
    with translation.override("en"), tenant_context(world.a.tenant):
        stem, rows = export_rows(world.a.manager, exports.QueryDict(query))
        text = "".join(piece for piece, _n in csv_pieces(rows))
    assert stem == "leads-delivered-20260301-20260331"
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff")))) == streamed
    with tenant_context(world.a.tenant), pytest.raises(exports.PermissionDenied):
        agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
        export_rows(agent, exports.QueryDict(query))
