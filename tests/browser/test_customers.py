"""The customer list in a real browser, on the demo tenant: the manager opens it from the
menu, searches a contact's phone as people write it, narrows by level, sorts, and opens a
customer; a rep sees their own customers only. Screenshots at 1280×800 and phone width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crm.formatting import format_phone
from crm.models import Membership, Tenant
from crm.tenancy import tenant_context
from customers.models import Contact, Customer
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _count(page) -> int:
    return int(re.search(r"\d+", page.get_by_test_id("customer-count").inner_text()).group())


def test_the_manager_finds_a_customer_and_opens_it(page, demo, artifacts):
    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        total = Customer.objects.count()
        contact = (
            Contact.objects.select_related("customer")
            .exclude(phone="")
            .filter(customer__level="A")
            .order_by("id")
            .first()
        )
        customer = contact.customer
    national = format_phone(contact.phone)

    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, demo.url, "manager")
    page.get_by_role("navigation").get_by_role("link", name=re.compile(r"^\s*\S?\s*客户$")).click()
    expect(page.get_by_role("heading", name="客户", level=1)).to_be_visible()
    assert _count(page) == total
    rows = page.get_by_test_id("customer-table").locator("tbody tr")
    expect(rows).to_have_count(min(total, 50))
    # Newest contact first: the first row's time is the latest on the page.
    times = [t for t in rows.locator("td:nth-child(6)").all_inner_texts() if t != "—"]
    assert times == sorted(times, reverse=True)
    page.screenshot(path=artifacts / "customers-manager.png")

    # The phone as people write it, then the level.
    page.get_by_test_id("customer-search").fill(national)
    page.get_by_role("button", name="筛选").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(customer.name)
    page.get_by_test_id("filter-level").select_option("B")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_test_id("no-match")).to_be_visible()
    page.get_by_test_id("filter-level").select_option("A")
    page.get_by_role("button", name="筛选").click()
    expect(rows).to_have_count(1)
    page.screenshot(path=artifacts / "customers-filtered.png")

    rows.first.get_by_test_id("customer-link").click()
    expect(page.get_by_test_id("customer-name")).to_have_text(customer.name)
    expect(page.get_by_test_id("contacts")).to_contain_text(national)
    page.screenshot(path=artifacts / "customer-detail-manager.png", full_page=True)

    # Sorted by name, the list keeps the choice across pages.
    page.go_back()
    page.get_by_role("link", name="清除筛选").click()
    page.get_by_role("link", name="名称").click()
    names = rows.locator("td:first-child").all_inner_texts()
    assert names == sorted(names)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "customers-phone.png")


def test_a_rep_sees_their_own_customers(page, demo):
    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        rep = Membership.objects.get(tenant=tenant, user__username="rep1")
        own = Customer.objects.filter(owner=rep).count()
    log_in(page, demo.url, "rep1")
    page.goto(f"{demo.url}/customers/")
    expect(page.get_by_role("heading", name="我的客户", level=1)).to_be_visible()
    assert _count(page) == own
    expect(page.get_by_test_id("filter-owner")).to_have_count(0)
