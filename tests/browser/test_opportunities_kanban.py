"""The kanban in a real browser (SortableJS, static/opportunities/kanban.js), under the
site's Content-Security-Policy: a rep drags a card from 初步接触 to 需求确认, sees the
missing required actions on the card (which goes back), does them, drags again and the
card stays; the keyboard's "move to" menu moves a card in place, and a refused one shows
what is missing; the manager's kanban, the table, a bulk move's and an import's pages.
Screenshots in tests/browser/artifacts/."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from opportunities.models import Opportunity
from tests.browser.conftest import log_in
from tests.opportunities.helpers import complete, make_opportunity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def stage_code(side, opportunity) -> str:
    with tenant_context(side.tenant):
        return Opportunity.objects.select_related("stage").get(pk=opportunity.pk).stage.code


def column(page, code):
    return page.locator(f'[data-testid=kanban-column][data-stage="{code}"]')


def card(page, opportunity):
    return page.locator(f"#card-{opportunity.public_id}")


def test_a_rep_drags_a_card_sees_what_is_missing_does_it_and_moves_it(
    page, live_server, world, artifacts
):
    side = world.a
    opp = make_opportunity(side, customer_name="恒力液压", amount=Decimal("480000"))
    make_opportunity(side, customer_name="华东机床", amount=Decimal("120000"))
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, side.rep.user.username)
    page.get_by_role("navigation").get_by_role("link", name="商机").click()
    expect(page.get_by_test_id("kanban")).to_be_visible()
    contact, needs = column(page, "contact"), column(page, "needs")
    expect(contact.get_by_test_id("column-name")).to_have_text("初步接触")
    expect(needs.get_by_test_id("column-name")).to_have_text("需求确认")
    expect(contact.get_by_test_id("column-count")).to_have_text("2")
    expect(contact.get_by_test_id("column-amount")).to_have_text("¥600,000")
    expect(page.get_by_test_id("total-weighted")).to_have_text("¥60,000")

    # Dragged before its required actions are done: refused, back in its column, the
    # missing items on the card, each a link.
    with page.expect_response(lambda r: r.url.endswith("/advance/")) as answer:
        card(page, opp).get_by_test_id("card-customer").drag_to(
            needs.get_by_test_id("column-cards")
        )
    assert answer.value.status == 409
    missing = card(page, opp).get_by_test_id("missing")
    expect(missing).to_be_visible()
    expect(contact.locator(f"#card-{opp.public_id}")).to_have_count(1)
    expect(needs.get_by_test_id("kanban-card")).to_have_count(0)
    expect(missing.get_by_test_id("missing-item")).to_have_count(2)
    for link in missing.locator("a").all():
        assert link.get_attribute("href")
    expect(contact.get_by_test_id("column-count")).to_have_text("2")
    page.screenshot(path=artifacts / "opportunities-kanban-refused.png")
    assert stage_code(side, opp) == "contact"

    # The required actions done (through the services), the same drag moves it.
    complete(side, opp, "contact")
    with page.expect_response(lambda r: r.url.endswith("/advance/")) as answer:
        card(page, opp).get_by_test_id("card-customer").drag_to(
            needs.get_by_test_id("column-cards")
        )
    assert answer.value.status == 200
    expect(needs.locator(f"#card-{opp.public_id}")).to_have_count(1)
    expect(contact.locator(f"#card-{opp.public_id}")).to_have_count(0)
    expect(card(page, opp).get_by_test_id("missing")).to_have_count(0)
    expect(card(page, opp).get_by_test_id("card-probability")).to_have_text("25%")
    expect(contact.get_by_test_id("column-count")).to_have_text("1")
    expect(needs.get_by_test_id("column-count")).to_have_text("1")
    expect(needs.get_by_test_id("column-amount")).to_have_text("¥480,000")
    expect(needs.get_by_test_id("column-weighted")).to_have_text("¥120,000")
    expect(page.get_by_test_id("total-weighted")).to_have_text("¥132,000")  # was ¥60,000
    assert stage_code(side, opp) == "needs"
    page.screenshot(path=artifacts / "opportunities-kanban-moved.png")

    # A reload shows what the database holds.
    page.reload()
    expect(column(page, "needs").locator(f"#card-{opp.public_id}")).to_have_count(1)
    expect(page.get_by_test_id("total-weighted")).to_have_text("¥132,000")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "opportunities-kanban-phone.png")


def test_the_keyboards_move_to_menu_moves_in_place_and_shows_refusals(
    page, live_server, world, artifacts
):
    side = world.a
    ready = make_opportunity(side, customer_name="甲公司")
    complete(side, ready, "contact")
    blocked = make_opportunity(side, customer_name="乙公司")
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, side.rep.user.username)
    page.goto(f"{live_server.url}/opportunities/")

    # Keyboard only: focus the card's menu, pick the stage, press Enter.
    select = card(page, ready).get_by_test_id("move-select")
    select.focus()
    expect(select).to_have_value("needs")  # the next stage is offered first
    page.keyboard.press("Tab")
    expect(card(page, ready).get_by_test_id("move-submit")).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/advance/")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    expect(column(page, "needs").locator(f"#card-{ready.public_id}")).to_have_count(1)
    expect(card(page, ready).get_by_test_id("card-name")).to_be_focused()
    assert page.url.endswith("/opportunities/")  # in place, no navigation
    assert stage_code(side, ready) == "needs"

    select = card(page, blocked).get_by_test_id("move-select")
    select.focus()
    select.select_option("demo")
    page.keyboard.press("Tab")
    with page.expect_response(lambda r: r.url.endswith("/advance/")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 409
    missing = card(page, blocked).get_by_test_id("missing")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("方案演示")
    expect(column(page, "contact").locator(f"#card-{blocked.public_id}")).to_have_count(1)
    page.screenshot(path=artifacts / "opportunities-kanban-keyboard-refused.png")
    card(page, blocked).get_by_test_id("feedback-close").click()
    expect(missing).to_have_count(0)
    assert stage_code(side, blocked) == "contact"


def test_the_manager_sees_the_team_and_the_table_and_moves_in_bulk(
    page, live_server, world, artifacts
):
    side = world.a
    ready = make_opportunity(side, customer_name="甲公司", amount=Decimal("250000"))
    complete(side, ready, "contact")
    blocked = make_opportunity(side, customer_name="乙公司", amount=Decimal("90000"))
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, side.manager.user.username)
    page.goto(f"{live_server.url}/opportunities/")
    expect(page.get_by_test_id("kanban-card")).to_have_count(2)
    expect(page.get_by_test_id("filter-owner")).to_be_visible()
    page.screenshot(path=artifacts / "opportunities-kanban-manager.png")

    page.get_by_test_id("to-list").click()
    rows = page.get_by_test_id("opportunity-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    page.screenshot(path=artifacts / "opportunities-list.png")
    page.locator("[data-select-page]").check()
    page.get_by_test_id("bulk-stage").select_option("needs")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_test_id("moved-item")).to_have_count(1)
    expect(page.get_by_test_id("refused-item")).to_have_count(1)
    expect(page.get_by_test_id("refused-item").get_by_test_id("missing-item")).to_have_count(2)
    page.screenshot(path=artifacts / "opportunities-bulk-result.png", full_page=True)
    assert stage_code(side, ready) == "needs"
    assert stage_code(side, blocked) == "contact"

    page.goto(f"{live_server.url}/opportunities/import/")
    page.screenshot(path=artifacts / "opportunities-import.png")
    page.locator("input[type=file]").set_input_files(
        {
            "name": "moves.csv",
            "mimeType": "text/csv",
            "buffer": f"id,stage\n{blocked.public_id},needs\nnot-an-id,needs\n".encode(),
        }
    )
    page.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("refused-row")).to_have_count(1)
    expect(page.get_by_test_id("error-row")).to_have_count(1)
    page.screenshot(path=artifacts / "opportunities-import-result.png", full_page=True)


def test_without_javascript_the_move_to_form_answers_a_page(browser, live_server, world, artifacts):
    side = world.a
    blocked = make_opportunity(side, customer_name="乙公司")
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    try:
        log_in(page, live_server.url, side.rep.user.username)
        page.goto(f"{live_server.url}/opportunities/")
        card(page, blocked).get_by_test_id("move-select").select_option("needs")
        with page.expect_response(lambda r: r.url.endswith("/advance/")) as answer:
            card(page, blocked).get_by_test_id("move-submit").click()
        assert answer.value.status == 409
        expect(page.get_by_test_id("missing-item")).to_have_count(2)
        expect(page.get_by_test_id("to-kanban")).to_be_visible()
        page.screenshot(path=artifacts / "opportunities-move-refused-page.png")
    finally:
        context.close()
    assert stage_code(side, blocked) == "contact"
