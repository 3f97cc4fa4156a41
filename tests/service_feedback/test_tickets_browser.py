"""The ticket screens in a real browser: the service agent lands on their home (the queue,
the recent tickets), opens the queue, finds the customer through the link form's search
(htmx) and links a ticket, remembered; the waiting ticket from the same phone goes with
it. Then the ticket list and a ticket's page. Screenshots at 1280×800 and phone width,
under the site's Content-Security-Policy without a refusal."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crm.models import Role
from crm.tenancy import tenant_context
from service_feedback.models import Ticket

# Debian's Chromium and the CSP watch of the browser tests (tests/browser/conftest.py).
from tests.browser.conftest import ARTIFACTS, browser_type_launch_args, context, log_in  # noqa: F401
from tests.factories import MembershipFactory
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_service_agent_links_a_waiting_ticket(page, live_server, world):
    ARTIFACTS.mkdir(exist_ok=True)
    artifacts = ARTIFACTS
    agent = MembershipFactory(
        tenant=world.a.tenant, role=Role.SERVICE, user__username="alpha-service"
    )
    customer_with_contact(world.a, "恒力液压", phone="13800138000", code="HL-01")
    customer_with_contact(world.a, "东方机械", phone="13700000000")
    upsert(
        world.a,
        "SOBOT-1001",
        subject="液压泵漏油，想增购两台",
        text="设备漏油，修好后想增购两台，并推荐给兄弟单位。",
        customer_code="HL-01",
        product_model="HP-200",
        fault_code="E12",
        province="广东省",
        status="resolved",
    )
    upsert(
        world.a,
        "SOBOT-1002",
        subject="控制器报警，要投诉",
        text="三天两次报警，再不解决就投诉。",
        phone="13800138000",
        product_model="CT-9",
        fault_code="A01",
        province="浙江省",
    )
    upsert(world.a, "SOBOT-1003", subject="陌生号码来电：设备无法启动", phone="13911112222",
           requester_name="李工", text="新买的设备无法启动。")  # fmt: skip
    upsert(world.a, "SOBOT-1004", subject="同一号码又来电", phone="13911112222")

    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server.url, agent.user.username)
    expect(page.get_by_test_id("ticket-queue")).to_be_visible()
    expect(page.get_by_test_id("ticket-queue-count")).to_have_text("2")
    expect(page.get_by_test_id("recent-tickets")).to_contain_text("液压泵漏油")
    page.screenshot(path=artifacts / "service-home.png", full_page=True)

    page.get_by_test_id("ticket-queue").locator('a[href="/service/tickets/unmatched/"]').click()
    waiting = page.get_by_test_id("unmatched-ticket")
    expect(waiting).to_have_count(2)
    first = waiting.first
    first.get_by_test_id("link-search").fill("恒力")
    expect(first.get_by_test_id("link-candidate")).to_have_count(1)
    page.screenshot(path=artifacts / "service-unmatched.png", full_page=True)
    first.get_by_test_id("link-candidate").click()
    first.get_by_test_id("link-submit").click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.locator(".alert-success")).to_contain_text("恒力液压")
    with tenant_context(world.a.tenant):
        assert not Ticket.objects.unmatched().exists()

    page.goto(f"{live_server.url}/service/tickets/")
    expect(page.get_by_test_id("ticket-row")).to_have_count(4)
    page.screenshot(path=artifacts / "service-tickets.png", full_page=True)
    page.get_by_test_id("ticket-link").filter(has_text="液压泵漏油").click()
    expect(page.get_by_test_id("ticket-flag-words")).to_contain_text("增购")
    page.screenshot(path=artifacts / "service-ticket.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/service/tickets/")
    page.screenshot(path=artifacts / "service-tickets-phone.png", full_page=True)
