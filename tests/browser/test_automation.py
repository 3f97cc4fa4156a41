"""An automation rule in a real browser (F47): the tenant admin writes "the same model 3
times in 30 days → the planner" in the admin, dry-runs it over the past enquiries (one
customer's three DN50 tickets: one firing), switches it on, and a second customer's third
enquiry puts the notification in the manager's inbox: its event goes through the outbox,
the drain queued on commit and the engine on a real Celery worker. No script error, no
refusal by the Content-Security-Policy (tests/browser/conftest.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from automation.models import Rule
from crm.models import Notification
from crm.tenancy import tenant_context
from tests.automation.helpers import customer, drain, enquiry
from tests.browser.conftest import log_in
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_admin_writes_dry_runs_and_enables_a_rule_that_then_fires(
    page, live_server, world, celery_worker_thread
):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    a = world.a
    customer(a, "恒力液压", phone="13800138000")
    customer(a, "华东阀门", phone="13900139000")
    for n in (1, 2, 3):
        enquiry(a, n, phone="13800138000")  # three times: the dry run's one firing
    for n in (4, 5):
        enquiry(a, n, phone="13900139000")  # twice: the third comes after the rule is on
    drain(a)

    log_in(page, live_server.url, a.admin.user.username)
    page.goto(live_server.url + reverse("admin:automation_rule_add"))
    page.locator("input[name=name]").fill("同型号三次 → 生产计划")
    page.locator("select[name=trigger]").select_option("ticket.opened")
    page.locator("input[name=count_at_least]").fill("3")
    page.locator("input[name=count_same]").fill("product_model")
    page.locator("select[name=action]").select_option("notify")
    page.locator("select[name=to_role]").select_option("manager")
    page.locator("input[name=message]").fill("同一型号咨询三次：建议小批量试产")
    page.get_by_test_id("dry-run-button").click()

    figures = page.get_by_test_id("dry-run-figures")
    expect(figures).to_be_visible()
    expect(page.get_by_test_id("dry-run-subject")).to_have_count(1)
    expect(page.get_by_test_id("dry-run-recipient")).to_contain_text(a.manager.display_name)
    with tenant_context(a.tenant):
        # The dry run saved nothing (the risk preset is every tenant's from the start).
        assert not Rule.objects.exclude(action="retention_task").exists()
    expect(figures).to_have_attribute("data-events", "5")
    expect(figures).to_have_attribute("data-fired", "1")
    expect(figures).to_have_attribute("data-subjects", "1")

    page.locator("input[name=is_active]").check()
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_be_visible()
    with tenant_context(a.tenant):
        rule = Rule.objects.get(trigger="ticket.opened")
    assert rule.is_active and rule.same_fields == ["product_model"]

    enquiry(a, 6, phone="13900139000")  # the second customer's third DN50 enquiry

    def told() -> bool:  # by the worker: crm.events_process, queued on the enquiry's commit
        with tenant_context(a.tenant):
            return Notification.objects.filter(
                recipient=a.manager, event="automation.rule_fired"
            ).exists()

    assert wait_for(told, timeout=30)
    page.context.clear_cookies()
    log_in(page, live_server.url, a.manager.user.username)
    page.goto(live_server.url + reverse("notifications"))
    expect(page.locator("body")).to_contain_text("同一型号咨询三次：建议小批量试产")
    assert errors == []
