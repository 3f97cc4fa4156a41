"""The service loop in a real browser (F27–F28): a helpdesk ticket saying 增购 arrives for
the rep's customer through the signed webhook and the inbox's task; the rep sees it on the daily
board under 服务线索, opens the customer, reads the service review card with its hint and
marks it read in place. No script error and no refusal by the Content-Security-Policy
(tests/browser/conftest.py). Screenshots in tests/browser/artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from leads.models import InboundEvent
from leads.tasks import process_inbound_event
from service_feedback.models import ReviewRead, Ticket
from tests.browser.conftest import log_in
from tests.leads.factories import post_signed
from tests.service_feedback.helpers import customer_with_contact, helpdesk

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_upsell_ticket_reaches_the_rep_who_reads_the_review(page, live_server, world, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    customer = customer_with_contact(world.a, "恒力液压", phone="13800138000")
    opened = timezone.now() - timedelta(hours=30)
    channel = helpdesk(world.a)
    ticket = {
        "external_id": "ZC-1001",
        "status": "closed",
        "subject": "V2.0 固件兼容问题",
        "text": "升级到 V2.0 后和老产线不兼容，另外我们想增购两台",
        "phone": "138 0013 8000",
        "opened_at": opened.isoformat(),
        "first_response_at": (opened + timedelta(minutes=8)).isoformat(),
        "resolved_at": (opened + timedelta(hours=6)).isoformat(),
        "satisfaction": 4,
        "sentiment": 30,
    }
    response = post_signed(Client(), channel, ticket)
    assert response.status_code == 202, response.content
    with tenant_context(world.a.tenant):
        event = InboundEvent.objects.get(public_id=response.json()["event"])
    process_inbound_event(world.a.tenant.pk, event.pk)  # the inbox's task, as the worker runs it
    with tenant_context(world.a.tenant):
        assert Ticket.objects.get().customer_id == customer.pk

    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, world.a.rep.user.username)
    page.goto(live_server.url + reverse("board:board"))
    lead = page.get_by_test_id("service-lead")
    expect(lead).to_have_count(1)
    expect(lead).to_contain_text("恒力液压")
    expect(lead).to_contain_text("V2.0 固件兼容问题")
    expect(lead.get_by_test_id("review-hint")).to_have_text("带上兼容性白皮书")
    page.screenshot(path=artifacts / "service-loop-board.png", full_page=True)

    lead.get_by_test_id("service-lead-customer").click()
    # A lazy panel of the customer 360: it loads as it comes into view.
    page.get_by_test_id("panel-service_review").scroll_into_view_if_needed()
    card = page.get_by_test_id("service-review")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("review-ticket")).to_have_count(1)
    expect(card.get_by_test_id("response-ok")).to_be_visible()
    expect(card.get_by_test_id("resolution-ok")).to_be_visible()
    expect(card.get_by_test_id("review-hint")).to_have_text("带上兼容性白皮书")
    expect(page.get_by_test_id("follow-up-card")).to_be_visible()
    card.screenshot(path=artifacts / "service-loop-review.png")

    card.get_by_test_id("review-mark-read").click()
    expect(page.get_by_test_id("review-read")).to_be_visible()
    expect(page.get_by_test_id("review-mark-read")).to_have_count(0)
    with tenant_context(world.a.tenant):
        read = ReviewRead.objects.get()
    assert (read.customer_id, read.member_id) == (customer.pk, world.a.rep.pk)
    page.reload()
    expect(page.get_by_test_id("review-read")).to_be_visible()
    assert errors == []
