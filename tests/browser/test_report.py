"""Marketing's lead-quality report in a real browser (F36): the marketing member opens it
from the menu, the invalid-reason chart is drawn by ECharts, a click on a bar opens the
leads behind it with the reason shown selected in the list's filters, and a figure of
the channel table opens exactly as many leads as it says. Screenshots at 1280×800 and at
phone width (390×844)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketing_reads_the_report_and_follows_a_bar_and_a_figure(page, demo, artifacts):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, demo.url, "marketing")
    page.get_by_role("link", name="线索质量报表").first.click()
    expect(page.get_by_role("heading", name="线索质量报表", level=1)).to_be_visible()

    # ECharts drew the chart: a canvas, one stacked series per channel with invalid leads.
    chart = page.locator("#reason-chart")
    expect(chart.locator("canvas")).to_be_visible()
    series = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('reason-chart'))"
        ".getOption().series.map(s => [s.name, s.data.map(d => d.value)])"
    )
    assert series and all(any(values) for _name, values in series), series
    page.screenshot(path=artifacts / "report-marketing.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "report-marketing-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # A click in the middle of the first series' first non-zero bar opens its leads.
    name, values = series[0]
    index = next(i for i, v in enumerate(values) if v)
    # Stacked from zero: the first series' bar spans [0, value] on the value axis.
    x, y = page.evaluate(
        "([value, index]) => echarts.getInstanceByDom(document.getElementById('reason-chart'))"
        ".convertToPixel({seriesIndex: 0}, [value / 2, index])",
        [values[index], index],
    )
    chart.click(position={"x": x, "y": y})
    page.wait_for_url(re.compile(r"/leads/\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["verification"] == ["invalid"] and "invalid_reason" in query, page.url
    expect(page.get_by_test_id("filter-invalid_reason")).to_have_value(query["invalid_reason"][0])
    expect(page.get_by_test_id("filter-verification")).to_have_value("invalid")
    count = int(re.search(r"\d+", page.get_by_test_id("lead-count").inner_text()).group())
    assert count == values[index], (name, values[index], count)

    # Back on the report: the total's "delivered" figure opens as many leads as it says.
    page.go_back()
    cell = page.get_by_test_id("table-channel").locator('td[data-figure="total:delivered"]')
    delivered = int(cell.get_attribute("data-value"))
    cell.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/leads/\?"))
    expect(page.get_by_test_id("lead-count")).to_contain_text(str(delivered))
