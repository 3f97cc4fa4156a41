"""The health panel on the customer page (health.panels through crm.contributions): what
the rep and the manager read, another tenant's customer not found, two queries whatever
the history, 暂无数据 for a customer without data (never a 0), a customer not scored yet
computed on the fly, and the contribution column summing to the score."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tenancy import tenant_context
from health import compute, panels
from health.models import DEFAULT_WEIGHTS, HealthSettings, HealthSnapshot
from tests.health.helpers import customer, interaction, moment

pytestmark = pytest.mark.django_db

WEIGHTS = {str(k): v for k, v in DEFAULT_WEIGHTS.items()}  # 25 20 20 10 15 10


def today(side):
    return compute.local_today(side.tenant)


def write_snapshot(side, cust, day, weights=None, **dims) -> HealthSnapshot:
    """A snapshot as the recompute writes it: `recency=(19, 65)` a value and its score."""
    weights = weights or WEIGHTS
    fields = {}
    for d in compute.DIMENSIONS:
        fields[f"{d}_value"], fields[f"{d}_score"] = dims.get(d, (None, None))
    scores = {d: fields[f"{d}_score"] for d in compute.DIMENSIONS}
    score, coverage = compute.overall(scores, weights)
    with tenant_context(side.tenant):
        return HealthSnapshot.objects.create(
            tenant=side.tenant,
            customer=cust,
            day=day,
            score=score,
            coverage=coverage,
            weights=weights,
            **fields,
        )


BASE = {
    "frequency": (7, 80),
    "service": (90, 80),
    "downloads": (2, 60),
    "quotes": (40, 50),
}


def history(side, cust, days=91):
    """`days` daily snapshots up to today: 5 days since the last interaction until
    yesterday, 19 today (the score falls from 78 to 69); 5/6 dimensions (no competitor)."""
    last = today(side)
    for n in range(days - 1, -1, -1):
        recency = (19, 65) if n == 0 else (5, 100)
        write_snapshot(side, cust, last - timedelta(days=n), recency=recency, **BASE)


def page(client, cust):
    """The health panel as the customer page fetches it when it comes into view."""
    return client.get(
        reverse("customers:panel", args=[cust.public_id, "health"]), headers={"HX-Request": "true"}
    )


def panel_html(response) -> str:
    html = response.content.decode()
    start = html.index('data-testid="health-panel"')
    return html[start : html.index("</section>", start)]


def test_the_rep_and_the_manager_read_the_explanation(world, en):
    a = world.a
    cust = customer(a)
    history(a, cust, days=40)
    for who in (a.rep, a.manager):
        response = page(en(who), cust)
        assert response.status_code == 200
        html = panel_html(response)
        # (25·65 + 20·80 + 20·80 + 10·60 + 15·50) / 90 = 68.6 → 69; yesterday 100: 78.3 → 78
        assert 'data-band="fair">69</span>' in html
        assert "5/6 dimensions" in html
        assert "78 → 69" in html
        # the mover, in the contribution it moved: 25·100/90 = 27.8 → 25·65/90 = 18.1
        assert "Days since last interaction 5 → 19 days, \u221210" in html
        assert "≤ 30 days → 65" in html
        assert "not counted" in html  # competitor: no data
        assert 'data-testid="health-trend"' in html and "health-trend-data" in html
        assert "health/panel.js" in html


def test_another_tenants_customer_is_not_found(world, login):
    cust = customer(world.b)
    history(world.b, cust, days=3)
    for who in (world.a.rep, world.a.manager, world.a.admin):
        client = login(who)
        assert page(client, cust).status_code == 404
        assert client.get(reverse("customers:detail", args=[cust.public_id])).status_code == 404


def test_the_customer_page_holds_the_panel_first_and_lazily(world, login):
    a = world.a
    cust = customer(a)
    history(a, cust, days=2)
    html = login(a.rep).get(reverse("customers:detail", args=[cust.public_id])).content.decode()
    assert 'data-testid="health-panel"' not in html  # not on the first screen
    from tests.customers.panels import lazy_panels

    assert next(iter(lazy_panels(html))) == "health"  # the first panel below it


def test_two_queries_whatever_the_history(world, django_assert_num_queries):
    a = world.a
    short, long = customer(a, "短"), customer(a, "长")
    history(a, short, days=2)
    history(a, long, days=91)
    with tenant_context(a.tenant):
        for cust in (short, long):
            with django_assert_num_queries(2):  # the settings, the 91 days of snapshots
                context = panels.health_context(a.tenant, cust)
            assert context["explanation"].score == 69
        assert len(context["chart"]["scores"]) == 91
        assert None not in context["chart"]["scores"]
        # not scored yet: one more, the day's values computed without writing
        new = customer(a, "新")
        with django_assert_num_queries(3):
            context = panels.health_context(a.tenant, new)
        assert context["explanation"].live and context["explanation"].score is None


@pytest.mark.parametrize(
    ("score", "band", "text"),
    [(100, "good", "100"), (80, "good", "80"), (79, "fair", "79"), (60, "fair", "60"),
     (59, "poor", "59"), (0, "poor", "0"), (None, "none", "No data yet")],
)  # fmt: skip
def test_the_score_badge_is_coloured_by_band(score, band, text):
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override("en"):
        html = render_to_string("health/score_badge.html", {"score": score})
    colour = {"good": "success", "fair": "warning", "poor": "danger", "none": "secondary"}[band]
    assert f'class="badge text-bg-{colour}"' in html
    assert f'data-band="{band}">{text}</span>' in html


def test_the_page_costs_the_same_with_a_long_history(world, login):
    a = world.a
    short, long = customer(a, "短"), customer(a, "长")
    history(a, short, days=1)
    history(a, long, days=91)
    client = login(a.manager)
    counts = []
    for cust in (short, long, short):
        with CaptureQueriesContext(connection) as queries:
            assert page(client, cust).status_code == 200
        counts.append(len(queries))
    assert counts[1] == counts[2]


def test_a_customer_without_data_shows_no_data_never_a_zero(world, en):
    a = world.a
    cust = customer(a)
    html = panel_html(page(en(a.rep), cust))
    assert 'data-band="none">No data yet</span>' in html
    assert "0/6 dimensions" in html
    assert 'data-testid="health-live"' in html  # not scored yet tonight
    assert not re.search(r'data-testid="health-badge"[^>]*>\s*0\s*<', html)
    assert 'data-testid="health-no-trend"' in html
    # a snapshot without a score (coverage 0) is no score either
    write_snapshot(a, cust, today(a))
    html = panel_html(page(en(a.rep), cust))
    assert 'data-band="none">No data yet</span>' in html
    assert 'data-testid="health-live"' not in html
    assert "No dimension has data" in html


def test_a_customer_not_scored_yet_is_computed_without_writing(world, en):
    a = world.a
    cust = customer(a)
    interaction(a, cust, moment(a, 3, day=today(a)))
    html = panel_html(page(en(a.rep), cust))
    # recency 3 days → 100, 1 interaction → 40: (25·100 + 20·40)/45 = 73.3 → 73, 2/6
    assert 'data-band="fair">73</span>' in html
    assert "2/6 dimensions" in html
    assert "Not scored yet tonight" in html
    with tenant_context(a.tenant):
        assert not HealthSnapshot.objects.filter(customer=cust).exists()
        assert not HealthSettings.objects.exists()  # read, not created


def test_the_contributions_sum_to_the_score(world, en):
    a = world.a
    cust = customer(a)
    write_snapshot(
        a, cust, today(a),
        recency=(12, 85), frequency=(2, 40), service=(72.5, 60), quotes=(33.3333, 50),
        competitor=(3, 40),
    )  # fmt: skip
    html = panel_html(page(en(a.rep), cust))
    cells = re.findall(r'data-testid="health-contribution">([^<]*)<', html)
    figures = [float(c) for c in cells if c.strip()]
    assert len(figures) == 5  # downloads has no data: "not counted", no figure
    score = int(re.search(r'data-testid="health-badge"[^>]*>(\d+)<', html).group(1))
    # (25·85 + 20·40 + 20·60 + 15·50 + 10·40) / 90 = 58.6 → 59
    assert score == 59
    assert abs(sum(figures) - score) <= 0.5 + 0.05 * len(figures)
    assert "58.6 → 59" in html


def test_the_weights_changing_between_the_snapshots_is_said(world, en):
    a = world.a
    cust = customer(a)
    write_snapshot(a, cust, today(a) - timedelta(days=1), recency=(5, 100), **BASE)
    weights = {**WEIGHTS, "recency": 35, "frequency": 10}
    write_snapshot(a, cust, today(a), weights=weights, recency=(5, 100), **BASE)
    html = panel_html(page(en(a.rep), cust))
    assert "The weights changed in between" in html
    assert "Days since last interaction 25 → 35" in html


def test_the_trend_has_gaps_and_the_risk_line(world):
    a = world.a
    cust = customer(a)
    write_snapshot(a, cust, today(a) - timedelta(days=10), recency=(5, 100))
    write_snapshot(a, cust, today(a), recency=(19, 65))
    with tenant_context(a.tenant):
        chart = panels.health_context(a.tenant, cust)["chart"]
    assert len(chart["days"]) == 91 and chart["days"][-1] == today(a).isoformat()
    assert chart["scores"][-11] == 100 and chart["scores"][-1] == 65
    assert chart["scores"].count(None) == 89
    assert chart["threshold"] == 60
