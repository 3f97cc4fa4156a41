"""The rep's morning in a real browser (F15–F19): rep1 logs in and lands on the daily board,
verifies a lead as valid in place, logs a follow-up with the keyboard alone, closes the day
and reads the summary. Screenshots at 1280×800 and at phone width (390×844)."""

from __future__ import annotations

import json
import re

import pytest
from django.db.models import F
from playwright.sync_api import expect

from crm.models import Membership, Role, Tenant
from crm.tenancy import tenant_context
from leads.models import Channel, EventSource, Lead, LeadStatus
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_TABS = 60  # a generous bound on Tab presses to reach a control of the form


def _open_lead_of(rep: Membership) -> Lead | None:
    return (
        Lead.objects.filter(owner=rep, status=LeadStatus.ASSIGNED, verification="")
        # An original first (PostgreSQL sorts NULLs last unless told), the newest.
        .order_by(F("revisit_of").asc(nulls_first=True), "-assigned_at")
        .first()
    )


def _lead_for(rep: Membership) -> Lead:
    """rep1's unverified lead; when the demo left none, one through the real intake pipeline
    (the inbox, then the worker's processing and the assignment engine), handed to rep1 by
    the manager if the engine chose someone else."""
    from leads.assignment.dispatch import lead_reassign
    from leads.intake.services import inbound_event_process, inbound_event_receive

    tenant = rep.tenant
    with tenant_context(tenant):
        lead = _open_lead_of(rep)
        if lead is not None:
            return lead
        channel = Channel.objects.filter(is_active=True).order_by("id").first()
        payload = {
            "company": "上海浦东新区影像诊断中心",
            "name": "陈主任",
            "phone": "13916628801",
            "province": "上海市",
            "city": "上海市",
            "message": "需要一台DR，想了解报价和装机周期",
        }
        event, _created = inbound_event_receive(
            channel=channel,
            raw_body=json.dumps(payload, ensure_ascii=False),
            source=EventSource.WEBHOOK,
            payload=payload,
            queue=False,
        )
        inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        lead = Lead.objects.get(pk=event.lead_id)
        if lead.owner_id != rep.pk:
            manager = Membership.objects.get(
                tenant=tenant, role=Role.MANAGER, user__username="manager"
            )
            lead_reassign(
                tenant=tenant,
                acting_member=manager,
                lead=lead,
                to=rep,
                reason="浏览器测试：交给张伟",
            )
        return _open_lead_of(rep)


def _tab_to(page, predicate: str) -> None:
    """Press Tab until `predicate` (JS over `el`, the focused element) holds."""
    for _ in range(MAX_TABS):
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {predicate}; }})()"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached: {predicate}")


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def _rank_open_clear_of_buttons(item) -> None:
    """Open the item's rank breakdown (a click pins it) and check that no visible button,
    summary or link of the item lies under it."""
    item.get_by_test_id("rank-toggle").click()
    box = item.get_by_test_id("rank-breakdown")
    expect(box).to_be_visible()
    area = box.bounding_box()
    controls = item.locator("[data-testid=item-actions] button, [data-testid=item-actions] summary")
    assert controls.count() >= 2
    for i in range(controls.count()):
        control = controls.nth(i)
        if not control.is_visible():
            continue
        assert not _overlap(area, control.bounding_box()), control.inner_text()
        control.hover(trial=True)  # reachable: nothing on top of it


def test_rep1_verifies_follows_up_by_keyboard_and_closes_the_day(page, demo, artifacts):
    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        rep1 = Membership.objects.select_related("tenant", "user").get(
            tenant=tenant, user__username="rep1"
        )
    lead = _lead_for(rep1)
    assert lead is not None

    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, demo.url, "rep1")
    # The board is the rep's home page.
    expect(page).to_have_url(re.compile(r"/board/$"))
    expect(page.get_by_test_id("home-title")).to_have_text("你好，张伟")
    expect(page.get_by_test_id("board-list")).to_be_visible()
    item = page.locator(f"#lead-{lead.public_id}")
    expect(item).to_be_visible()
    expect(page.get_by_test_id("slot-stalled_opportunities")).to_be_visible()
    page.screenshot(path=artifacts / "board-rep1.png", full_page=True)

    # The rank's breakdown shows on focus; Escape hides it.
    item.get_by_test_id("rank-toggle").focus()
    expect(item.get_by_test_id("rank-breakdown")).to_be_visible()
    expect(item.get_by_test_id("rank-breakdown")).to_contain_text("×")
    expect(item.get_by_test_id("rank-breakdown")).to_contain_text("线索评分")
    page.keyboard.press("Escape")
    expect(item.get_by_test_id("rank-breakdown")).to_be_hidden()

    # Opened, at desktop and at phone width, it covers none of the item's buttons.
    for width, height, name in ((1280, 800, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        _rank_open_clear_of_buttons(item)
        item.screenshot(path=artifacts / f"board-rank-open-{name}.png")
        item.get_by_test_id("rank-toggle").click()  # a second click closes it
        expect(item.get_by_test_id("rank-breakdown")).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "board-rep1-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # The counts in the header filter the list.
    overdue = int(page.get_by_test_id("count-overdue").inner_text())
    page.locator(".board-filter[data-filter=overdue]").click()
    expect(page.locator(".board-item:not(.d-none)")).to_have_count(overdue)
    page.locator(".board-filter[data-filter='']").click()
    total = int(page.get_by_test_id("count-total").inner_text())
    expect(page.locator(".board-item:not(.d-none)")).to_have_count(total)

    # A collapsed section stays collapsed on the next visit.
    slot = page.get_by_test_id("slot-at_risk_customers")
    slot.locator("summary").click()
    expect(slot).not_to_have_attribute("open", "")
    page.reload()
    expect(page.get_by_test_id("slot-at_risk_customers")).not_to_have_attribute("open", "")
    expect(page.get_by_test_id("board-work")).to_have_attribute("open", "")
    item = page.locator(f"#lead-{lead.public_id}")

    # Valid, visit booked: the verdict asks for the visit's date. Saved without it, the
    # field says so in place and nothing is saved; with today's date, the verdict and its
    # next step replace the forms.
    item.get_by_test_id("verify-valid-visit").click()
    visit_form = item.get_by_test_id("verify-valid_visit")
    expect(visit_form).to_be_visible()
    visit_form.get_by_test_id("verify-save-valid_visit").click()
    expect(item.get_by_test_id("verify-error-visit_date")).to_contain_text("拜访日期")
    expect(item).not_to_have_class(re.compile(r"board-item-done"))
    with tenant_context(tenant):
        lead.refresh_from_db()
        assert lead.verification == ""
    today = page.evaluate("() => document.querySelector('[name=visit_date]').min")
    item.get_by_label("拜访日期").fill(today)
    page.screenshot(path=artifacts / "board-verify-visit-date.png", full_page=True)
    item.get_by_test_id("verify-save-valid_visit").click()
    expect(item.get_by_test_id("verification")).to_be_visible()
    expect(item.get_by_test_id("next-step")).to_contain_text("上门拜访")
    expect(item.get_by_test_id("verify-valid-visit")).to_have_count(0)
    expect(item).to_have_class(re.compile(r"board-item-done"))
    with tenant_context(tenant):
        lead.refresh_from_db()
        assert lead.verification == "valid_visit" and lead.customer_id is not None
        step = lead.interactions.get()
        assert step.kind == "verification" and step.next_action_due.isoformat() == today
    # On the board, the lead is now its next step: the visit, due today.
    page.reload()
    follow_up_item = page.locator(f"#fu-{step.public_id}")
    expect(follow_up_item).to_be_visible()
    expect(follow_up_item).to_have_attribute("data-kind", "follow_up")
    expect(page.locator(f"#lead-{lead.public_id}")).to_have_count(0)
    item = follow_up_item

    # The follow-up, with the keyboard only: Enter opens the form in place, which takes the
    # focus; arrows pick the channel, Space a talk tag and the next action, Enter saves.
    item.get_by_test_id("follow-up-open").focus()
    page.keyboard.press("Enter")
    form = item.get_by_test_id("follow-up-form")
    expect(form).to_be_visible()
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.name === 'channel'"
    )
    page.keyboard.press("ArrowRight")  # phone → WeChat
    _tab_to(page, "el.name === 'talk_tags'")
    page.keyboard.press("Space")
    _tab_to(page, "el.name === 'note'")
    page.keyboard.type("客户确认下周安排演示")
    _tab_to(page, "el.name === 'next_action'")
    page.keyboard.press("Space")
    _tab_to(page, "el.type === 'submit' && !!el.closest('[data-testid=follow-up-form]')")
    page.keyboard.press("Enter")
    saved = item.get_by_test_id("follow-up-saved")
    expect(saved).to_be_visible()
    with tenant_context(tenant):
        interaction = lead.interactions.get(kind="follow_up")
        assert interaction.channel == "wechat"
        assert interaction.talk_tags and interaction.closes_loop
        assert interaction.next_done_at is None
        step.refresh_from_db()
        assert step.next_done_at == interaction.at  # the visit's step, closed by it

    # Close the day: the summary appears on the board.
    page.get_by_test_id("close-day").click()
    summary = page.get_by_test_id("day-summary")
    expect(summary).to_be_visible()
    contacts = int(summary.get_by_test_id("summary-contacts").inner_text())
    assert contacts >= 2  # the verification and the follow-up, at least
    assert int(summary.get_by_test_id("summary-loops").inner_text()) >= 1
    expect(summary.get_by_test_id("summary-tomorrow")).to_be_visible()
    page.screenshot(path=artifacts / "board-rep1-closed.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "board-rep1-closed-phone.png", full_page=True)
