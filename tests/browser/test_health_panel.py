"""The health panel on the customer page in a real browser: the rep opens a customer with
90 days of snapshots and reads the score, its coverage, the dimension that moved it since
yesterday and the trend chart (ECharts, drawn on a canvas), under the site's
Content-Security-Policy without a refusal or a script error (tests/browser/conftest.py).
Screenshot in tests/browser/artifacts/health-panel.png."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from health import compute
from health.models import HealthSettings
from tests.browser.conftest import log_in
from tests.health.helpers import customer
from tests.health.test_panel import BASE, write_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BANDS = HealthSettings().band_table()


def history(side, cust) -> None:
    """91 days: the last interaction drifting away and coming back, tickets slipping,
    a week not scored (a gap) and, before it, days without data; yesterday 5 days since
    the last interaction, today 19."""
    today = compute.local_today(side.tenant)
    for n in range(90, -1, -1):
        day = today - timedelta(days=n)
        if 40 <= n <= 46:
            continue  # not scored: a gap in the trend
        if n >= 84:
            write_snapshot(side, cust, day)  # no data yet: no score
            continue
        recency = {0: 19, 1: 5}.get(n, (83 - n) % 25)
        recency_score = compute.band_score("recency", recency, BANDS)
        service = (95, 100) if n > 30 else (72.5, 60)
        dims = {**BASE, "service": service, "recency": (recency, recency_score)}
        write_snapshot(side, cust, day, **dims)


def test_the_rep_reads_the_health_explanation(page, live_server, world, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    cust = customer(world.a, "恒力液压")
    history(world.a, cust)

    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, world.a.rep.user.username)
    page.goto(f"{live_server.url}/customers/{cust.public_id}/")
    panel = page.get_by_test_id("health-panel")
    panel.scroll_into_view_if_needed()
    expect(panel).to_be_visible()
    # (25·65 + 20·80 + 20·60 + 10·60 + 15·50) / 90 = 64.2 → 64, amber; 5 of 6 dimensions
    expect(panel.get_by_test_id("health-badge")).to_have_text("64")
    expect(panel.get_by_test_id("health-badge")).to_have_attribute("data-band", "fair")
    expect(panel.get_by_test_id("health-coverage")).to_contain_text("5/6")
    # Since yesterday: 74 → 64, the days since the last interaction moved it most.
    since = panel.get_by_test_id("health-change-yesterday")
    expect(since.get_by_test_id("health-change-scores")).to_have_text("74 → 64")
    expect(since.get_by_test_id("health-mover")).to_have_text(re.compile(r"5 → 19 .+, \u221210$"))
    rows = panel.get_by_test_id("health-dimension")
    expect(rows).to_have_count(6)
    contributions = [
        float(t)
        for t in panel.get_by_test_id("health-contribution").all_inner_texts()
        if re.fullmatch(r"[\d.]+", t.strip())
    ]
    assert len(contributions) == 5 and abs(sum(contributions) - 64) <= 0.5 + 0.25
    # The trend: ECharts drew its canvas.
    chart = panel.get_by_test_id("health-trend")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart.locator("canvas")).to_be_visible()
    panel.screenshot(path=artifacts / "health-panel.png", caret="initial")
    chart.locator("canvas").hover()  # the tooltip, drawn on the canvas
    page.wait_for_timeout(200)
    assert errors == []
