import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rep_logs_in_in_chinese_switches_to_english_and_logs_out(page, demo, artifacts):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, demo.url, "rep1")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_test_id("home-title")).to_have_text("你好，张伟")
    expect(page.locator("main")).to_contain_text("销售代表")
    page.screenshot(path=artifacts / "home-rep1-zh.png", full_page=True)

    page.get_by_test_id("language-menu").click()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("home-title")).to_have_text("Welcome, 张伟")
    page.screenshot(path=artifacts / "home-rep1-en.png", full_page=True)

    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_the_admin_switches_tenant_and_sees_the_system_status(page, demo, artifacts):
    log_in(page, demo.url, "admin")
    expect(page.get_by_test_id("system-status")).to_contain_text("数据库")
    page.get_by_test_id("tenant-switcher").click()
    page.get_by_role("button", name=re.compile("艾克米工业软件")).click()
    expect(page.get_by_test_id("tenant-switcher")).to_contain_text("艾克米工业软件")
    expect(page.get_by_role("alert")).to_contain_text("已切换到")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "home-admin-phone.png", full_page=True)
