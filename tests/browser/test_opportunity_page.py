"""The opportunity's page in a real browser: the rep opens an opportunity, reads the stage
path with what is missing, uploads a PDF (the path and the validity checks update in
place), maps a decision-chain member (the table, the coverage and the graph update), and
is refused a win with the missing actions listed. No script error and no refusal by the
Content-Security-Policy (tests/browser/conftest.py). Screenshots at 1280×900 and phone
width in tests/browser/artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.opportunities.helpers import PDF, make_opportunity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _attachments_in_tmp(tmp_path, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    from opportunities.models import Attachment

    monkeypatch.setattr(
        Attachment._meta.get_field("file"), "storage", FileSystemStorage(location=tmp_path)
    )


def shot(page, path, element=None):
    """A screenshot that leaves the page as it was (`caret="initial"`): Playwright hides the
    caret with a style attribute on each input, which htmx would then copy onto the
    input's successor, a style the policy refuses."""
    if element is not None:
        element.screenshot(path=path, caret="initial")
    else:
        page.screenshot(path=path, caret="initial", full_page=True)


def test_the_rep_works_through_an_opportunity(page, live_server, world, artifacts):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Errors on the console, but for the refusals the test provokes (422, 409): the browser
    # logs every 4xx answer.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    opp = make_opportunity(world.a, name="恒力液压 · 液压机")
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, world.a.rep.user.username)
    page.goto(f"{live_server.url}/opportunities/{opp.public_id}/")
    expect(page.get_by_test_id("opportunity-name")).to_have_text("恒力液压 · 液压机")

    # The stage path: the first stage lacks a follow-up and a decision-chain member.
    first = page.get_by_test_id("stage-contact")
    expect(first).to_have_attribute("data-state", "current")
    expect(first.get_by_test_id("stage-missing-count")).to_contain_text("2")
    missing = first.locator("[data-testid=requirement][data-met='0'] a")
    expect(missing).to_have_count(2)
    needs = page.get_by_test_id("stage-needs")
    document = needs.locator("[data-testid=requirement]").first
    expect(document).to_have_attribute("data-met", "0")
    expect(page.get_by_test_id("validity-evidence")).to_have_attribute("data-met", "0")
    shot(page, artifacts / "opportunity-page.png")

    # A requirement document, uploaded in place: the path and the validity check follow.
    upload = page.get_by_test_id("attach-form")
    upload.locator("select[name=kind]").select_option("requirement")
    upload.locator("input[type=file]").set_input_files(
        {"name": "需求说明书.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    upload.get_by_test_id("attach-submit").click()
    expect(page.get_by_test_id("attachment")).to_have_count(1)
    expect(page.get_by_test_id("attachment")).to_contain_text("需求说明书.pdf")
    expect(document).to_have_attribute("data-met", "1")
    expect(page.get_by_test_id("validity-evidence")).to_have_attribute("data-met", "1")
    expect(page.get_by_test_id("history-entry").first).to_be_visible()

    # A file that is not what it claims: a field error, nothing added.
    upload = page.get_by_test_id("attach-form")
    upload.locator("select[name=kind]").select_option("proposal")
    upload.locator("input[type=file]").set_input_files(
        {"name": "方案.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf at all"}
    )
    upload.get_by_test_id("attach-submit").click()
    expect(page.get_by_test_id("error-file")).to_be_visible()
    expect(page.get_by_test_id("attachment")).to_have_count(1)

    # A decision-chain member: the table, the coverage, "reach next" and the graph.
    form = page.get_by_test_id("chain-add-form")
    form.locator("input[name=contact_name]").fill("王总")
    form.locator("input[name=contact_title]").fill("信息中心主任")
    form.locator("select[name=role]").select_option(label="CIO")
    form.locator("select[name=influence]").select_option("high")
    form.locator("select[name=attitude]").select_option("support")
    form.get_by_test_id("chain-add-submit").click()
    expect(page.get_by_test_id("chain-member")).to_have_count(1)
    expect(page.get_by_test_id("chain-member")).to_contain_text("王总")
    expect(page.get_by_test_id("reach-next")).to_contain_text("CIO")
    graph = page.get_by_test_id("chain-graph")
    expect(graph.locator("canvas")).to_have_count(1)
    drawn = page.evaluate(
        "() => echarts.getInstanceByDom(document.querySelector('[data-chain-graph]'))"
        ".getOption().series[0].data.filter(n => !n.id.startsWith('frame-')).length"
    )
    assert drawn == 2  # the customer and the member
    box = graph.bounding_box()
    assert box["height"] >= 200 and box["width"] > 200
    # The first stage's chain requirement is met now: one action left (a follow-up).
    expect(first.locator("[data-testid=requirement][data-met='0']")).to_have_count(1)
    shot(page, artifacts / "opportunity-chain.png", page.get_by_test_id("chain"))

    # Winning now is refused, with what is missing listed and linked.
    page.get_by_test_id("win").click()
    refused = page.get_by_test_id("close").get_by_test_id("refused")
    expect(refused).to_be_visible()
    expect(refused.get_by_test_id("missing").locator("li").first).to_be_visible()
    expect(refused).to_contain_text("已生效")
    # Losing asks for the detail only for a reason that names something (the competitor).
    lose = page.get_by_test_id("lose-form")
    detail = lose.locator("input[name=detail]")
    expect(detail).to_be_hidden()
    lose.locator("select[name=reason]").select_option(label="选择竞品")
    expect(detail).to_be_visible()
    lose.locator("select[name=reason]").select_option(label="预算冻结")
    expect(detail).to_be_hidden()
    shot(page, artifacts / "opportunity-page-worked.png")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/opportunities/{opp.public_id}/")
    expect(page.get_by_test_id("chain-graph").locator("canvas")).to_have_count(1)
    shot(page, artifacts / "opportunity-page-phone.png")
    assert errors == []
