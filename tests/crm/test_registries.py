"""The kernel's registries that apps contribute to: the daily board's sections (crm.board)
and the metric definitions (crm.metrics). The leads metrics' figures are checked against
their rows in tests/leads/test_report_metrics.py."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from django.urls import reverse

from crm import board as board_sections
from crm import metrics
from crm.board import BoardSection, ShownSection
from crm.metrics import COUNT, SUM, Metric
from crm.roles import MANAGERS
from crm.tenancy import tenant_context

BOARD = reverse("board:board")


# -- board sections ---------------------------------------------------------------------------


def test_opportunities_and_health_fill_the_boards_two_slots_in_order():
    """The two panels beside the rep's list come from the apps' AppConfig.ready(), not from
    the board: stalled opportunities first (with their items: opportunities.board), then
    at-risk customers (with their items: health.board)."""
    registered = [s.key for s in board_sections.sections()]
    assert registered[:2] == ["stalled_opportunities", "at_risk_customers"]
    stalled, at_risk = board_sections.sections()[:2]
    assert stalled.items is not None and stalled.template and stalled.holds and stalled.source
    assert at_risk.items is not None and at_risk.template and at_risk.holds and at_risk.source


def test_sections_for_lists_items_and_keeps_the_roles(monkeypatch, world):
    calls = []

    def mine(membership, today):
        calls.append((membership.pk, today))
        return ["one", "two"]

    monkeypatch.setitem(
        board_sections._registry,
        "zz_test_items",
        BoardSection("zz_test_items", "Items", "list", order=900, items=mine, template="x.html"),
    )
    monkeypatch.setitem(
        board_sections._registry,
        "zz_test_managers",
        BoardSection("zz_test_managers", "Managers", "people", order=901, roles=MANAGERS),
    )
    today = date(2026, 3, 2)

    with tenant_context(world.a.tenant):  # sections run inside the member's tenant
        rep_sections = {s.section.key: s for s in board_sections.sections_for(world.a.rep, today)}
    assert "zz_test_managers" not in rep_sections
    assert rep_sections["zz_test_items"].items == ["one", "two"]
    assert rep_sections["zz_test_items"].count == 2
    assert rep_sections["at_risk_customers"] == ShownSection(
        board_sections._registry["at_risk_customers"], []
    )
    assert calls == [(world.a.rep.pk, today)]

    with tenant_context(world.a.tenant):
        manager_sections = board_sections.sections_for(world.a.manager, today)
    manager_keys = [s.section.key for s in manager_sections]
    assert manager_keys[-2:] == ["zz_test_items", "zz_test_managers"]


def test_a_section_with_items_needs_a_template():
    with pytest.raises(ValueError, match="template"):
        board_sections.register_section(
            BoardSection("zz_no_template", "X", "x", items=lambda membership, today: [])
        )
    assert "zz_no_template" not in board_sections._registry


def test_the_board_shows_the_slots_and_a_sections_items(monkeypatch, settings, tmp_path, world, en):
    """Without items a section shows its slot (what it will list, what fills it), with
    the same words as before; with items, its own template renders them."""
    text = en(world.a.rep).get(BOARD).text
    stalled = text.index('data-testid="slot-stalled_opportunities"')
    at_risk = text.index('data-testid="slot-at_risk_customers"')
    assert stalled < at_risk
    assert "Stalled opportunities" in text and "At-risk customers" in text
    # nothing stalled on this rep's board: the slot says what will fill it
    assert "Opportunities you own, once they are opened on a customer or a verified lead." in text
    assert "Filled by customer health once it is scored." in text

    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "section.html").write_text(
        '<ul data-testid="zz-items">{% for item in items %}<li>{{ item }}</li>{% endfor %}'
        "</ul><p>{{ count }} for {{ section.key }}</p>"
    )
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [*templates[0]["DIRS"], tmp_path]
    settings.TEMPLATES = templates
    monkeypatch.setitem(
        board_sections._registry,
        "zz_test",
        BoardSection(
            "zz_test",
            "Test section",
            "star",
            items=lambda membership, today: [f"{membership.user.username} {today:%Y}"],
            template="zz/section.html",
            holds="never shown",
        ),
    )
    text = en(world.a.rep).get(BOARD).text
    assert 'data-testid="slot-zz_test"' in text
    assert f"<li>{world.a.rep.user.username} " in text
    assert "<p>1 for zz_test</p>" in text
    assert "never shown" not in text


def test_the_slots_are_in_chinese(world, login):
    text = login(world.a.rep).get(BOARD).text
    assert "停滞商机" in text and "风险客户" in text


# -- metric definitions ----------------------------------------------------------------------


def test_a_metric_sums_a_field_only_when_it_says_sum():
    def rows(tenant, start, end):
        raise AssertionError("not called")

    with pytest.raises(ValueError):
        Metric("x.sum", "X", "X", rows, aggregate=SUM)
    with pytest.raises(ValueError):
        Metric("x.count", "X", "X", rows, aggregate=COUNT, of="contacts")
    with pytest.raises(ValueError):
        Metric("x.avg", "X", "X", rows, aggregate="avg")


def test_the_leads_metrics_are_registered_with_words_for_people():
    keys = [m.key for m in metrics.metrics()]
    for key in (
        "leads.delivered",
        "leads.verified_24h",
        "leads.valid_24h",
        "leads.invalid",
        "leads.duplicates",
        "leads.suspect",
        "leads.contacts_made",
    ):
        assert key in keys
        metric = metrics.get_metric(key)
        assert str(metric.label) and str(metric.definition) and metric.columns


def test_period_bounds_are_the_tenants_local_days(world):
    tenant = world.a.tenant
    since, until = metrics.period_bounds(tenant, date(2026, 3, 2), date(2026, 3, 8))
    assert since.utcoffset() == until.utcoffset()
    assert (until - since).days == 7
    assert since.astimezone(tenant.tzinfo).hour == 0
