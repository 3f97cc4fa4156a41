"""The follow-up form in a real browser on the lead page (F17, F18): "contact ended" fills
the date (+3 working days) and shows the suggested status, a missing next action comes
back in place with its error (htmx swaps the 422), and a saved follow-up refreshes the
lead's counters and timeline. Keyboard-only logging on the board: tests/browser/test_board.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from customers import services
from customers.models import Interaction, PresetKind
from leads.verification import lead_verify
from tests.browser.conftest import (
    ARTIFACTS,
    browser_type_launch_args,  # noqa: F401 (Debian's Chromium)
)
from tests.leads.factories import make_assigned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_contact_ended_errors_in_place_and_saving(page, live_server, world):
    side = world.a
    lead = make_assigned_lead(
        side.tenant, side.rep, timezone.now() - timedelta(hours=1), phone_key="+8613812345678"
    )
    with tenant_context(side.tenant):
        due = services.add_working_days(services.tenant_today(), 3)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(side.rep.user.username)
    page.get_by_label("Password").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/leads/{lead.public_id}/")

    form = page.get_by_test_id("follow-up-form")
    form.get_by_label("Note").fill("客户说要再考虑一下")
    form.get_by_test_id("contact-ended").click()
    expect(form.get_by_test_id("suggested-status")).to_contain_text("异议处理")
    expect(form.get_by_label("Before")).to_have_value(due.isoformat())

    # No next action chosen: the form comes back in place with the error, as filled in.
    form.get_by_test_id("follow-up-submit").click()
    expect(page.get_by_test_id("error-next_action")).to_be_visible()
    expect(page.get_by_test_id("follow-up-form").get_by_label("Note")).to_have_value(
        "客户说要再考虑一下"
    )
    with tenant_context(side.tenant):
        assert not Interaction.objects.exists()

    form = page.get_by_test_id("follow-up-form")
    form.get_by_label("发送报价").check()
    form.get_by_label("技术疑虑").check()
    form.get_by_label("Before").fill(due.isoformat())
    form.get_by_label("Note").press("Enter")  # Enter submits
    expect(page.get_by_test_id("follow-up-saved")).to_be_visible()
    # The counters and the timeline around the form follow (the leadChanged event).
    expect(page.get_by_test_id("touch-count")).to_have_text("1")
    expect(page.get_by_test_id("timeline")).to_contain_text("发送报价")
    with tenant_context(side.tenant):
        interaction = Interaction.objects.get()
        assert interaction.next_action_due == due
        assert interaction.suggested_status == "异议处理"
        assert interaction.talk_tags == ["技术疑虑"]


def test_a_rep_opens_the_customer_from_a_verified_lead(page, live_server, world):
    """The customer page a rep reaches from the lead: the whole trail on one page (the
    lead's timeline and a follow-up logged on the customer itself)."""
    side = world.a
    lead = make_assigned_lead(
        side.tenant,
        side.rep,
        timezone.now() - timedelta(hours=2),
        company="宁波恒力液压科技有限公司",
        phone="+8613957123481",
    )
    with tenant_context(side.tenant):
        lead = lead_verify(
            tenant=lead.tenant,
            acting_member=side.rep,
            lead=lead,
            outcome="valid_visit",
            visit_date=timezone.localdate() + timedelta(days=2),
        )
        services.interaction_log(
            tenant=side.tenant,
            acting_member=side.rep,
            customer=lead.customer,
            channel="phone",
            note="采购说下周定型号",
            next_action=services.presets(PresetKind.ACTION).get(name="发送方案"),
            next_action_due=timezone.localdate() + timedelta(days=3),
        )
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("用户名").fill(side.rep.user.username)
    page.get_by_label("密码").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.goto(f"{live_server.url}/leads/{lead.public_id}/")
    page.get_by_test_id("lead-customer").get_by_role("link").first.click()

    expect(page.get_by_test_id("customer-name")).to_have_text("宁波恒力液压科技有限公司")
    # The timeline is a lazy panel below the form: it loads when scrolled into view.
    page.locator("#panel-timeline").scroll_into_view_if_needed()
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("采购说下周定型号")  # logged on the customer
    expect(timeline).to_contain_text("宁波恒力液压科技有限公司")  # the lead's own trail
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "customer-from-lead.png", full_page=True)
