"""The service report in a real browser (F30), on the demo: the service agent opens it
for the last 60 days, both trend charts are drawn by ECharts under the site's
Content-Security-Policy (the `context` fixture fails on any refusal), a click on a point
of the rate chart opens the ticket list with that week's days, and the data-quality
notice links to its tickets. Screenshots at 1280×800 and at phone width."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

# The browser tests' fixtures (Debian's chromium, the CSP watch, the seeded demo), here
# outside tests/browser/.
from tests.browser.conftest import (  # noqa: F401
    artifacts,
    browser_type_launch_args,
    context,
    demo,
    log_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_service_reads_the_trend_and_follows_a_point(page, demo, artifacts):  # noqa: F811
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, demo.url, "service")
    today = timezone.localdate()
    start = today - timedelta(days=59)
    page.goto(f"{demo.url}/reports/service/?opened_from={start}&opened_to={today}")
    for chart_id in ("service-rate-chart", "service-time-chart"):
        expect(page.locator(f"#{chart_id} canvas")).to_be_visible()
    series = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('service-rate-chart'))"
        ".getOption().series.map(s => [s.name, s.data.map(d => d.value)])"
    )
    assert len(series) == 2 and any(v for v in series[0][1]), series
    expect(page.get_by_test_id("data-quality")).to_be_visible()
    page.screenshot(path=artifacts / "service-report.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "service-report-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    values = series[0][1]
    index = next(i for i, v in enumerate(values) if v)
    x, y = page.evaluate(
        "([value, index]) => echarts.getInstanceByDom("
        "document.getElementById('service-rate-chart')).convertToPixel({seriesIndex: 0}, "
        "[index, value])",
        [values[index], index],
    )
    page.locator("#service-rate-chart").click(position={"x": x, "y": y})
    page.wait_for_url(re.compile(r"/service/tickets/\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["first_response_max"] == ["15"] and "opened_from" in query, page.url
