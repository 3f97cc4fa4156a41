"""The risk list in a real browser (F34): the nightly recompute puts two quiet customers of
the rep on the list and the tenant's rule gives their retention tasks; the rep reads the
list (score, coverage, days, the retention task), the manager sorts and filters it, and
the rep marks one task done on the daily board in place (htmx), which takes it off the
board. No script error, no refusal by the Content-Security-Policy
(tests/browser/conftest.py). Screenshots in tests/browser/artifacts/ and, with
HEALTH_SHOTS set, there too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from customers.models import Customer
from health import compute
from health.models import PlaybookStep, RiskEntry
from tests.automation.helpers import drain
from tests.browser.conftest import log_in
from tests.health.helpers import customer, interaction, moment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shots(artifacts: Path) -> Path:
    target = Path(os.environ.get("HEALTH_SHOTS", artifacts))
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_the_rep_reads_the_list_and_marks_a_task_done(page, live_server, world, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    a = world.a
    today = compute.local_today(a.tenant)
    for name, days, province in (("恒力液压", 20, "江苏省"), ("东方机电", 45, "浙江省")):
        cust = customer(a, name, owner=a.rep)
        with tenant_context(a.tenant):
            Customer.objects.filter(pk=cust.pk).update(province=province)
        interaction(a, cust, moment(a, days, today))
    customer(a, "新客户", owner=a.rep)  # no data: never on the list
    with tenant_context(a.tenant):
        PlaybookStep.objects.create(
            tenant=a.tenant, dimension="frequency", action="定制化技术方案 + 限时服务响应承诺"
        )
        assert compute.recompute(a.tenant, day=today).entered == 2
    drain(a)  # the outbox, as the worker drains it: the tenant's rule gives the tasks
    out = shots(artifacts)

    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, a.rep.user.username)
    page.goto(live_server.url + reverse("health:risk_list"))
    rows = page.get_by_test_id("risk-row")
    expect(rows).to_have_count(2)
    first = rows.first  # newest stay first; both entered today: the later id
    expect(page.get_by_test_id("risk-table")).to_contain_text("恒力液压")
    expect(page.get_by_test_id("risk-table")).to_contain_text("2/6")
    expect(page.get_by_test_id("risk-table")).to_contain_text("定制化技术方案")
    expect(first.get_by_test_id("risk-customer")).to_be_visible()
    page.screenshot(path=out / "health-risk-list.png", full_page=True)

    # The daily board: both tasks; one done in place.
    page.goto(live_server.url + reverse("board:board"))
    tasks = page.get_by_test_id("risk-task")
    expect(tasks).to_have_count(2)
    expect(tasks.first.get_by_test_id("risk-task-action")).to_have_text(
        "定制化技术方案 + 限时服务响应承诺"
    )
    page.get_by_test_id("slot-at_risk_customers").screenshot(path=out / "health-risk-board.png")
    tasks.first.get_by_test_id("risk-task-done").click()
    expect(page.get_by_test_id("risk-task-closed")).to_be_visible()
    expect(page.get_by_test_id("risk-task")).to_have_count(1)
    page.get_by_test_id("slot-at_risk_customers").screenshot(
        path=out / "health-risk-board-done.png"
    )
    with tenant_context(a.tenant):
        assert RiskEntry.objects.filter(done_at__isnull=False, done_by=a.rep).count() == 1
    page.reload()
    expect(page.get_by_test_id("risk-task")).to_have_count(1)

    # The list shows the task done; the manager filters by region.
    page.goto(live_server.url + reverse("health:risk_list"))
    expect(page.get_by_test_id("risk-table")).to_contain_text("已完成")
    page.context.clear_cookies()
    log_in(page, live_server.url, a.manager.user.username)
    page.goto(live_server.url + reverse("health:risk_list") + "?sort=score")
    expect(page.get_by_test_id("risk-row")).to_have_count(2)
    page.get_by_test_id("filter-region").fill("浙江")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_test_id("risk-row")).to_have_count(1)
    expect(page.get_by_test_id("risk-table")).to_contain_text("东方机电")
    page.screenshot(path=out / "health-risk-list-manager.png", full_page=True)
    assert errors == []
