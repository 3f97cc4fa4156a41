"""A background export in a real browser: the lead list's "后台导出" button, the exports
page refreshing itself (htmx) until a real worker has written the file, the download."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import expect

from crm import exports
from crm.celery import app
from tests.browser.conftest import (
    browser_type_launch_args,  # noqa: F401 (Debian's Chromium)
    context,  # noqa: F401 (every page under the CSP without a refusal)
    log_in,
)
from tests.leads.factories import make_channel, make_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_press_export_in_the_background_watch_it_and_download(
    page, live_server, world, monkeypatch
):
    monkeypatch.setattr(exports, "BACKGROUND_THRESHOLD", 2)
    channel = make_channel(world.a.tenant)
    for i in range(3):
        make_lead(world.a.tenant, channel, company=f"后台导出测试 {i}")
    app.control.purge()
    log_in(page, live_server.url, world.a.manager.user.username)
    page.goto(f"{live_server.url}/leads/")
    page.get_by_role("button", name="后台导出").click()

    page.wait_for_url(f"{live_server.url}/exports/")
    row = page.get_by_test_id("export")
    expect(row).to_have_attribute("data-status", "queued")  # no worker yet
    expect(row).to_contain_text("排队中")
    # A worker starts: the page, polling every 2 s, shows the file ready without a reload.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        expect(row).to_have_attribute("data-status", "done", timeout=20_000)
    expect(row).to_contain_text("已完成")
    with page.expect_download() as info:
        page.get_by_test_id("export-download").click()
    download = info.value
    assert download.suggested_filename.startswith("leads-")
    body = Path(download.path()).read_text(encoding="utf-8-sig")
    assert body.count("后台导出测试") == 3
