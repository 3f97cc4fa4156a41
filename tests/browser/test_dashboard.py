"""The manager dashboard in a real browser, on the demo tenant: the manager lands on it,
the chart is drawn, and region → rep → a figure → a lead leads to the lead's trail; the
list the figure opens has as many rows as the figure says. Screenshots at 1280×800."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_manager_goes_from_a_region_to_a_leads_trail(page, demo, artifacts):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, demo.url, "manager")
    expect(page).to_have_url(re.compile(r"/dashboard/$"))  # the manager's home
    page.get_by_test_id("preset-30d").click()
    expect(page.locator("#dashboard-chart canvas")).to_be_visible()
    page.screenshot(path=artifacts / "dashboard-manager.png", full_page=True)

    # A region (the busiest first), then its busiest rep.
    page.get_by_test_id("region-link").first.click()
    expect(page.get_by_test_id("breadcrumb").locator("li")).to_have_count(2)
    page.get_by_test_id("rep-link").first.click()
    crumbs = page.get_by_test_id("breadcrumb").locator("li")
    expect(crumbs).to_have_count(3)
    page.screenshot(path=artifacts / "dashboard-rep.png", full_page=True)

    # The rep's delivered leads: the list has as many rows as the figure.
    figure = page.get_by_test_id("tile-leads.delivered").get_by_test_id("tile-value")
    delivered = int(figure.inner_text().replace(",", ""))
    assert delivered > 0
    figure.click()
    expect(page).to_have_url(re.compile(r"/reports/metrics/leads\.delivered/\?"))
    expect(page.get_by_test_id("metric-figure")).to_have_attribute("data-rows", str(delivered))
    rows = page.get_by_test_id("metric-row")
    expect(rows).to_have_count(min(delivered, 50))
    expect(page.get_by_test_id("active-filter-rep")).to_be_visible()

    # A lead, and its trail.
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/leads/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("timeline")).to_be_visible()
    expect(page.get_by_test_id("timeline").locator("li").first).to_be_visible()
    page.screenshot(path=artifacts / "dashboard-lead-trail.png", full_page=True)
