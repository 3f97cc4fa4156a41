"""A prospect fills in the hosted form on a phone; the manager finds the lead in /leads/."""

import re

import pytest
from playwright.sync_api import expect

from crm.models import Tenant
from tests.leads.factories import make_channel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_prospect_submits_the_form_on_a_phone_and_the_manager_sees_the_lead(
    browser, demo, celery_worker_thread, artifacts
):
    channel = make_channel(
        Tenant.objects.get(slug="demo"), name="2026 医疗器械展（浏览器测试）", type="trade_show_qr"
    )
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    ).new_page()
    phone.goto(f"{demo.url}/f/{channel.key}/?utm_source=qr&utm_campaign=expo2026")
    phone.get_by_label(re.compile("公司名称")).fill("苏州精测仪器有限公司")
    phone.get_by_label(re.compile("联系人")).fill("顾晓峰")
    phone.get_by_label(re.compile("电话")).fill("13962155870")
    phone.get_by_label("制造业").check()
    phone.get_by_label(re.compile("需求")).fill("急需两台CT检测设备的报价")
    phone.screenshot(path=artifacts / "lead-form-phone.png", full_page=True)
    phone.get_by_role("button", name=re.compile("提交")).click()
    expect(phone.locator("main")).to_contain_text("谢谢")
    phone.screenshot(path=artifacts / "lead-form-thanks-phone.png", full_page=True)

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{demo.url}/accounts/login/")
    page.get_by_label("用户名").fill("manager")
    page.get_by_label("密码").fill("demo-pass-2026")
    page.get_by_role("button", name="登录").click()
    # The worker processes the submission in the background: reload until it is there.
    for _ in range(20):
        page.goto(f"{demo.url}/leads/?q=苏州精测")
        if page.get_by_text("苏州精测仪器有限公司").count():
            break
        page.wait_for_timeout(500)
    expect(page.get_by_role("link", name="苏州精测仪器有限公司")).to_be_visible()
    page.screenshot(path=artifacts / "leads-list-manager.png", full_page=True)
    page.get_by_role("link", name="苏州精测仪器有限公司").click()
    expect(page.locator("main")).to_contain_text("expo2026")
    expect(page.locator("main")).to_contain_text("139 6215 5870")  # stored +8613962155870
    page.screenshot(path=artifacts / "lead-detail-manager.png", full_page=True)


def test_an_over_long_paste_is_a_field_error_not_a_silent_cut(browser, live_server, artifacts):
    from crm.tenancy import tenant_context
    from leads.models import InboundEvent
    from tests.factories import TenantFactory

    tenant = TenantFactory(slug="formtest", name="表单测试公司")
    channel = make_channel(tenant, name="官网表单（浏览器测试）")
    page = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN"
    ).new_page()
    page.goto(f"{live_server.url}/f/{channel.key}/")
    page.get_by_label(re.compile("公司名称")).fill("苏州精测仪器有限公司")
    page.get_by_label(re.compile("联系人")).fill("顾" * 300)
    page.get_by_label(re.compile("电话")).fill("13962155870")
    page.get_by_label("制造业").check()
    page.get_by_label(re.compile("需求")).fill("需" * 48_000)
    # Nothing cut on the way: the browser holds the whole paste.
    assert len(page.get_by_label(re.compile("联系人")).input_value()) == 300
    assert len(page.get_by_label(re.compile("需求")).input_value()) == 48_000
    page.get_by_role("button", name=re.compile("提交")).click()

    expect(page.locator("#wrap_contact_name")).to_contain_text("最多 100 个字符：现在有 300 个。")
    expect(page.locator("#wrap_message")).to_contain_text("最多 2000 个字符：现在有 48000 个。")
    page.screenshot(path=artifacts / "lead-form-too-long.png", full_page=True)
    with tenant_context(tenant):
        assert not InboundEvent.objects.exists()
