"""The Content-Security-Policy in a real browser (crm/security.py): the key pages load with
the policy in force and not one refusal on the console (tests/browser/conftest.py's
`context` fails the test on any), and what runs on scripts still runs: Bootstrap's
menus, htmx's loads and in-place forms, the report's chart, the Django admin."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crm.models import Membership, Tenant
from crm.tenancy import tenant_context
from leads.models import Lead
from tests.browser.conftest import is_csp_violation, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _policy_of(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    assert "'nonce-" in policy and "frame-ancestors 'none'" in policy, policy
    return policy


def test_the_key_pages_run_under_the_policy_without_a_refusal(page, demo, artifacts):
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if is_csp_violation(m) else None)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        rep1 = Membership.objects.get(tenant=tenant, user__username="rep1")
        lead = Lead.objects.filter(owner=rep1).order_by("-created_at").first()
    assert lead is not None

    # Anonymous: the log-in page.
    _policy_of(page.goto(f"{demo.url}/accounts/login/"))
    log_in(page, demo.url, "rep1")

    # The board (rep1's home): its script filters the list; htmx loads the bell.
    with page.expect_response(re.compile(r"/notifications/bell/")) as bell:
        _policy_of(page.goto(f"{demo.url}/board/"))
    assert bell.value.status == 200
    expect(page.get_by_test_id("board-list")).to_be_visible()
    overdue = int(page.get_by_test_id("count-overdue").inner_text())
    page.locator(".board-filter[data-filter=overdue]").click()
    expect(page.locator(".board-item:not(.d-none)")).to_have_count(overdue)
    # Bootstrap's dropdowns.
    page.get_by_test_id("user-menu").click()
    expect(page.get_by_test_id("logout")).to_be_visible()
    page.keyboard.press("Escape")

    # The leads list, and a lead: a contact recorded in place (htmx POST and swap).
    _policy_of(page.goto(f"{demo.url}/leads/"))
    expect(page.locator("table")).to_have_count(1)
    _policy_of(page.goto(f"{demo.url}/leads/{lead.public_id}/"))
    before = int(page.get_by_test_id("touch-count").inner_text())
    url = page.url
    form = page.get_by_test_id("touch-form")
    form.locator("textarea, input[type=text]").first.fill("电话沟通报价")
    with page.expect_response(re.compile(r"/touch/$")) as touch:
        form.get_by_role("button").click()
    assert touch.value.request.headers.get("hx-request") == "true"
    expect(page.get_by_test_id("touch-count")).to_have_text(str(before + 1))
    assert page.url == url  # swapped in place, no navigation

    # Customers.
    _policy_of(page.goto(f"{demo.url}/customers/"))
    expect(page.locator("main")).to_be_visible()

    # The admin, with the report and the Django admin's change list.
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    log_in(page, demo.url, "admin")
    _policy_of(page.goto(f"{demo.url}/reports/lead-quality/"))
    expect(page.locator("#reason-chart canvas")).to_be_visible()
    page.locator("#reason-chart canvas").hover()  # the tooltip (drawn on the canvas)
    page.screenshot(path=artifacts / "csp-report.png", full_page=True)

    _policy_of(page.goto(f"{demo.url}/admin/leads/lead/"))
    expect(page.locator("#result_list")).to_be_visible()
    # The admin's own scripts: the action bar counts the selected rows.
    page.locator("#result_list input.action-select").first.check()
    expect(page.locator(".action-counter")).to_contain_text("1")
    # The admin's widgets: the tag picker (filter_horizontal) builds itself by script.
    _policy_of(page.goto(f"{demo.url}/admin/leads/channel/add/"))
    expect(page.locator("#id_tags_from")).to_be_visible()
    expect(page.locator("#id_tags_to")).to_be_visible()
    _policy_of(page.goto(f"{demo.url}/admin/leads/tag/"))
    expect(page.locator("#result_list svg.crm-swatch").first).to_be_visible()
    page.screenshot(path=artifacts / "csp-admin-tags.png", full_page=True)

    assert console == []
    assert errors == []
