"""Replay before apply (F14) in a real browser: the sales manager opens the assignment
rules from the home page, edits the draft policy, simulates it over the demo's past leads,
reads which leads would move, and applies it.

The replay runs where it runs in production: in a Celery worker (`celery_worker_thread`,
a real worker on the real broker, in this process), never inline in the request; the
page polls with htmx until the worker has stored the result.
"""

import re

import pytest
from playwright.sync_api import expect

from crm.models import Tenant
from crm.tenancy import tenant_context
from leads.models import AssignmentPolicy, PolicyStatus
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _last_version() -> int:
    with tenant_context(Tenant.objects.get(slug="demo")):
        return (
            AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
            or 0
        )


def test_the_manager_simulates_a_draft_sees_the_moves_and_applies_it(
    page, demo, celery_worker_thread, artifacts
):
    before = _last_version()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, demo.url, "manager")

    # From the manager's home page: the assignment rules card.
    page.goto(f"{demo.url}/")
    page.locator("a[href='/admin/leads/assignmentpolicy/']").first.click()
    expect(page).to_have_url(re.compile(r"/admin/leads/assignmentpolicy/$"))
    page.get_by_test_id("edit-draft").click()
    expect(page.get_by_test_id("draft-buttons")).to_be_visible()

    # Region matters far more than anything else: leads move to the reps of their region.
    page.locator("input[name=weight_region]").fill("3")
    page.locator("input[name=weight_industry]").fill("0")
    page.locator("input[name=replay_days]").fill("30")
    page.screenshot(path=artifacts / "policy-draft-admin.png", full_page=True)
    page.locator("input[name=_simulate]").click()

    expect(page).to_have_url(re.compile(r"/admin/leads/assignmentpolicy/\d+/replay/[0-9a-f-]+/$"))
    # The page refreshes itself (htmx) until the worker has stored the result.
    done = page.get_by_test_id("replay-done")
    expect(done).to_be_visible(timeout=60_000)
    moved = int(page.get_by_test_id("moved-total").inner_text())
    assert moved > 0
    rows = page.get_by_test_id("replay-moved").locator("tbody tr")
    expect(rows.first.locator("a")).to_have_attribute("href", re.compile(r"^/leads/[0-9a-f-]+/$"))
    expect(page.get_by_test_id("replay-reps").locator("tbody tr")).not_to_have_count(0)
    expect(page.get_by_test_id("gini")).to_contain_text("→")
    page.screenshot(path=artifacts / "replay-admin.png", full_page=True)

    page.get_by_test_id("apply-form").locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/admin/leads/assignmentpolicy/$"))
    assert _last_version() == before + 1
    expect(page.locator(".messagelist")).to_contain_text(str(before + 1))
    expect(page.locator("#result_list")).to_contain_text(str(before + 1))
    page.screenshot(path=artifacts / "replay-applied.png", full_page=True)
