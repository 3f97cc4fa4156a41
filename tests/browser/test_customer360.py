"""The customer 360 in a real browser (F35): the first screen (profile, key figures,
contacts) is there at once while the panels below wait as placeholders; scrolling the
service review card into view loads its ticket rows in place, and the health panel reads
its explanation. No script error and no
refusal by the Content-Security-Policy (tests/browser/conftest.py). Screenshots in
/work/notes/shots/ when that folder exists, else tests/browser/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.customers.test_customer360 import populate
from tests.health.test_panel import history
from tests.service_feedback.helpers import customer_with_contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/work/notes/shots")


def _shot(artifacts: Path, name: str) -> Path:
    return (SHOTS if SHOTS.is_dir() else artifacts) / f"c360-{name}.png"


def test_scrolling_the_tickets_panel_into_view_loads_its_rows(page, live_server, world, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    customer = customer_with_contact(world.a, "恒力液压", phone="13800138000")
    populate(world.a, customer, 12)
    history(world.a, customer)  # 91 days of health: 78 yesterday, 69 today

    page.set_viewport_size({"width": 1280, "height": 640})
    log_in(page, live_server.url, world.a.manager.user.username)
    page.goto(live_server.url + reverse("customers:detail", args=[customer.public_id]))

    # The first screen at once: the profile, the key figures, the first five contacts.
    expect(page.get_by_test_id("customer-name")).to_have_text("恒力液压")
    expect(page.get_by_test_id("figure-contacts").get_by_test_id("figure-value")).to_have_text("13")
    expect(page.get_by_test_id("figure-tickets_12_months")).to_contain_text("12")
    expect(page.get_by_test_id("contact-row")).to_have_count(5)
    page.screenshot(path=_shot(artifacts, "first-screen"))

    # The service review card is below the fold: a placeholder until it is scrolled to.
    review = page.locator("#panel-service_review")
    box = review.bounding_box()
    assert box is not None and box["y"] > 640, box
    expect(review).to_have_attribute("data-panel-state", "loading")
    expect(page.get_by_test_id("review-ticket")).to_have_count(0)

    review.scroll_into_view_if_needed()
    card = page.get_by_test_id("service-review")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("review-ticket")).to_have_count(5)
    expect(page.locator("#panel-service_review")).to_have_attribute("data-panel-state", "loaded")
    card.screenshot(path=_shot(artifacts, "tickets-panel"))

    # The health explanation, the first panel under the first screen.
    page.locator("#panel-health").scroll_into_view_if_needed()
    health = page.get_by_test_id("health-panel")
    expect(health).to_be_visible()
    expect(health.get_by_test_id("health-badge")).to_have_text("69")
    expect(health.get_by_test_id("health-coverage")).to_contain_text("5/6")
    since = health.get_by_test_id("health-change-yesterday")
    expect(since.get_by_test_id("health-change-scores")).to_have_text("78 → 69")
    expect(since.get_by_test_id("health-mover")).to_contain_text("5 → 19")
    expect(health.get_by_test_id("health-trend").locator("canvas")).to_have_count(1)
    health.screenshot(path=_shot(artifacts, "health-panel"), caret="initial")

    # Further down, the follow-ups: five, then "显示更多" in place.
    follow_ups = page.locator("#panel-interactions")
    follow_ups.scroll_into_view_if_needed()
    rows = page.get_by_test_id("interaction-row")
    expect(rows).to_have_count(5)
    page.locator("#panel-interactions").get_by_test_id("panel-more").click()
    expect(rows).to_have_count(12)
    page.screenshot(path=_shot(artifacts, "scrolled"), full_page=True)
    assert errors == []
