"""The pipeline's screens (`/opportunities/`, `/opportunities/list/`): who sees which
opportunities, the kanban's columns and cards, the table's filters, sorts and pages, the
CSV's columns, amounts hidden from service agents, the empty states and the query
budgets. The moves: test_pipeline_moves.py."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.http import QueryDict, StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import exports as background
from crm.models import Role
from crm.navigation import items_for
from crm.tenancy import tenant_context
from opportunities import services
from opportunities.exports import KIND, opportunity_rows
from opportunities.models import LostReason, Opportunity, Stage
from tests.factories import MembershipFactory
from tests.opportunities.helpers import complete, make_opportunity, stage

pytestmark = pytest.mark.django_db

KANBAN = reverse("opportunities:kanban")
LIST = reverse("opportunities:list")
CSV_FIRST = ["id", "stage", "status", "amount", "probability", "valid", "owner"]


def csv_rows(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def cards(response) -> dict[str, list[str]]:
    """{stage code: [opportunity names]} of the kanban's columns."""
    assert response.status_code == 200
    return {
        c.stage.code: [card.opportunity.name for card in c.cards]
        for c in response.context["columns"]
    }


def advance(side, opportunity, code, by=None):
    with tenant_context(side.tenant):
        return services.opportunity_advance(
            tenant=side.tenant,
            acting_member=by or opportunity.owner,
            opportunity=opportunity,
            stage=stage(side, code),
        )


def lose(side, opportunity):
    with tenant_context(side.tenant):
        return services.opportunity_lose(
            tenant=side.tenant,
            acting_member=opportunity.owner,
            opportunity=opportunity,
            reason=LostReason.objects.get(name="预算冻结"),
        )


# -- the kanban ---------------------------------------------------------------------------------


def test_a_first_visit_creates_the_stages_and_shows_the_empty_state(world, en):
    with tenant_context(world.a.tenant):
        assert not Stage.objects.exists()
    response = en(world.a.rep).get(KANBAN)
    assert response.status_code == 200
    assert response.context["total"] == 0
    body = response.content.decode()
    assert 'data-testid="kanban"' not in body  # the empty state instead of empty columns
    assert 'data-testid="no-opportunities"' in body
    assert "You have no opportunities yet" in body
    assert reverse("customers:list") in body  # where opportunities are opened
    assert reverse("leads:list") + "?verification=valid" in body
    with tenant_context(world.a.tenant):
        assert list(Stage.objects.values_list("code", flat=True)) == [
            "contact",
            "needs",
            "demo",
            "negotiation",
            "contract",
        ]


def test_a_rep_sees_their_own_and_a_manager_the_team_in_stage_columns(world, en):
    own = make_opportunity(world.a, customer_name="甲公司", amount=Decimal("100000"))
    complete(world.a, own, "contact")
    advance(world.a, own, "needs")
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    theirs = make_opportunity(world.a, customer_name="乙公司", owner=other_rep)
    make_opportunity(world.b, customer_name="外租户")
    lost = make_opportunity(world.a, customer_name="丙公司")
    lose(world.a, lost)

    as_rep = cards(en(world.a.rep).get(KANBAN))
    assert list(as_rep) == ["contact", "needs", "demo", "negotiation", "contract"]
    assert as_rep["needs"] == [own.name]
    assert as_rep["contact"] == []  # the lost one is not on the kanban

    response = en(world.a.manager).get(KANBAN)
    as_manager = cards(response)
    assert as_manager["needs"] == [own.name]
    assert as_manager["contact"] == [theirs.name]
    body = response.content.decode()
    assert "外租户" not in body
    assert "初步接触" in body and "需求确认" in body
    # The manager narrows it to one owner.
    narrowed = cards(en(world.a.manager).get(KANBAN, {"owner": other_rep.pk}))
    assert narrowed["contact"] == [theirs.name]
    assert narrowed["needs"] == []
    # A rep has no owner filter; ?owner= does not widen their kanban.
    response = en(world.a.rep).get(KANBAN, {"owner": other_rep.pk})
    assert cards(response)["contact"] == []
    assert 'data-testid="filter-owner"' not in response.content.decode()


def test_columns_count_sum_and_weigh_their_open_opportunities(world, en):
    first = make_opportunity(world.a, customer_name="甲公司", amount=Decimal("100000"))
    make_opportunity(world.a, customer_name="乙公司", amount=Decimal("300000"))
    make_opportunity(world.a, customer_name="丙公司")  # no amount yet
    lost = make_opportunity(world.a, customer_name="丁公司", amount=Decimal("999999"))
    lose(world.a, lost)
    response = en(world.a.manager).get(KANBAN)
    column = response.context["columns"][0]
    assert column.stage.code == "contact"
    assert column.count == 3
    assert column.amount == Decimal("400000")
    assert column.weighted == Decimal("40000")  # 10 % of 400,000
    assert column.valid == 0
    body = response.content.decode()
    assert "¥400,000" in body and "¥40,000" in body
    assert body.count('data-testid="kanban-card"') == 3
    card = next(c for c in column.cards if c.opportunity.pk == first.pk)
    assert card.amount_text == "¥100,000"
    assert card.days_in_stage == 0
    assert not card.stalled
    assert card.movable
    assert card.next_code == "needs"


def test_a_card_shows_valid_and_stalled(world, en):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        # Validity's four checks (their evidence kept by the services and triggers).
        now = timezone.now()
        Opportunity.objects.filter(pk=opp.pk).update(
            visit_at=now,
            evidence_at=now,
            approved_at=now,
            budget_band="100k_500k",
            last_activity_at=now - timedelta(days=15),  # 初步接触 stalls after 14 days
            stage_entered_at=now - timedelta(days=20),
        )
    response = en(world.a.rep).get(KANBAN)
    card = response.context["columns"][0].cards[0]
    assert card.opportunity.is_valid
    assert card.stalled and card.idle_days == 15 and card.days_in_stage == 20
    body = response.content.decode()
    assert 'data-testid="valid-badge"' in body
    assert "Stalled: no activity for 15 days" in body
    assert response.context["columns"][0].valid == 1


def test_service_agents_see_the_team_without_amounts_and_move_nothing(world, en):
    make_opportunity(world.a, amount=Decimal("480000"))
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    response = en(agent).get(KANBAN)
    assert response.status_code == 200
    assert len(response.context["columns"][0].cards) == 1
    body = response.content.decode()
    assert "480,000" not in body and "¥" not in body.split('id="kanban"')[1]
    assert 'data-testid="card-amount"' not in body
    assert 'data-testid="move-form"' not in body and "data-movable" not in body
    # The table: no amount column, no row checkboxes; the CSV: no amount column either,
    # the others in their order.
    response = en(agent).get(LIST)
    assert "amount" not in [c.name for c in response.context["table"].columns]
    assert "480,000" not in response.content.decode()
    assert 'data-testid="bulk-form"' not in response.content.decode()
    header, row = csv_rows(en(agent).get(LIST, {"_export": "csv"}))
    assert header[:6] == [c for c in CSV_FIRST if c != "amount"]
    assert "480000" not in ",".join(row)


def test_the_kanban_keeps_its_query_count_whatever_the_number_of_opportunities(world, login):
    reps = [MembershipFactory(tenant=world.a.tenant, role=Role.REP) for _ in range(3)]

    def add(n, start):
        for i in range(start, start + n):
            opp = make_opportunity(
                world.a, customer_name=f"客户{i:03d}", owner=reps[i % 3], amount=Decimal(i * 1000)
            )
            if i % 2:
                with tenant_context(world.a.tenant):
                    Opportunity.objects.filter(pk=opp.pk).update(
                        stage=stage(world.a, "needs" if i % 4 == 1 else "demo")
                    )

    client = login(world.a.manager)
    add(3, 0)
    client.get(KANBAN)  # warm-up (session, caches)
    with CaptureQueriesContext(connection) as few:
        response = client.get(KANBAN)
    assert sum(c.count for c in response.context["columns"]) == 3
    add(30, 3)
    with CaptureQueriesContext(connection) as many:
        response = client.get(KANBAN)
    assert sum(c.count for c in response.context["columns"]) == 33
    assert len(many) == len(few), [q["sql"][:160] for q in many.captured_queries]


def test_a_column_shows_its_first_cards_and_links_to_the_rest(world, en):
    from opportunities.access import opportunities_visible_to
    from opportunities.tables import kanban_columns
    from opportunities.views_pipeline import active_stages

    opps = [make_opportunity(world.a, customer_name=f"客户{i}") for i in range(3)]
    with tenant_context(world.a.tenant):
        for i, opp in enumerate(opps):
            Opportunity.objects.filter(pk=opp.pk).update(
                last_activity_at=timezone.now() - timedelta(hours=i)
            )
        visible = opportunities_visible_to(world.a.manager)
        column = kanban_columns(world.a.manager, visible, active_stages(), per_column=2)[0]
    assert [c.opportunity.pk for c in column.cards] == [opps[0].pk, opps[1].pk]  # most recent
    assert column.count == 3 and column.more == 1
    response = en(world.a.manager).get(KANBAN)
    assert response.context["columns"][0].more == 0
    assert [c.opportunity.pk for c in response.context["columns"][0].cards] == [o.pk for o in opps]


def test_the_pipeline_is_in_the_menu_for_every_role_that_opens_it(world, login, rf):
    client = login(world.a.rep)
    response = client.get(KANBAN)
    assert 'href="/opportunities/"' in response.content.decode()
    assert "商机" in response.content.decode()
    request = rf.get("/")
    request.user = world.a.rep.user
    request.membership = world.a.rep
    assert "opportunities" in [item.key for item in items_for(request)]


def test_someone_without_a_seat_in_the_tenant_is_refused(world, login, db):
    from tests.factories import UserFactory

    stranger = UserFactory(username="stranger")
    assert login(stranger).get(KANBAN).status_code == 403


# -- the table ----------------------------------------------------------------------------------


def names(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    table = response.context["table"]
    with tenant_context(response.wsgi_request.tenant):
        return [row.record.name for row in table.paginated_rows]


def test_the_table_lists_a_reps_own_and_a_managers_team(world, en):
    own = make_opportunity(world.a, customer_name="甲公司")
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    theirs = make_opportunity(world.a, customer_name="乙公司", owner=other_rep)
    make_opportunity(world.b, customer_name="外租户")
    assert names(en(world.a.rep).get(LIST)) == [own.name]
    assert set(names(en(world.a.manager).get(LIST))) == {own.name, theirs.name}
    assert names(en(world.a.manager).get(LIST, {"owner": other_rep.pk})) == [theirs.name]


def test_the_table_filters_by_stage_status_validity_month_and_name(world, en):
    jia = make_opportunity(world.a, customer_name="甲公司", expected_close=date(2026, 3, 9))
    complete(world.a, jia, "contact")
    advance(world.a, jia, "needs")
    yi = make_opportunity(world.a, customer_name="乙公司", expected_close=date(2026, 6, 1))
    bing = make_opportunity(world.a, customer_name="丙公司")
    lose(world.a, bing)
    with tenant_context(world.a.tenant):
        now = timezone.now()
        Opportunity.objects.filter(pk=yi.pk).update(
            visit_at=now, evidence_at=now, approved_at=now, budget_band="lt100k"
        )
    client = en(world.a.manager)
    assert names(client.get(LIST, {"stage": "needs"})) == [jia.name]
    assert set(names(client.get(LIST, {"stage": "contact"}))) == {yi.name, bing.name}
    assert names(client.get(LIST, {"status": "lost"})) == [bing.name]
    assert names(client.get(LIST, {"valid": "yes"})) == [yi.name]
    assert set(names(client.get(LIST, {"valid": "no"}))) == {jia.name, bing.name}
    assert names(client.get(LIST, {"close_from": "2026-04"})) == [yi.name]
    assert names(client.get(LIST, {"close_to": "2026-03"})) == [jia.name]
    assert set(names(client.get(LIST, {"close_from": "2026-03", "close_to": "2026-06"}))) == {
        jia.name,
        yi.name,
    }
    assert names(client.get(LIST, {"q": "乙公"})) == [yi.name]
    response = client.get(LIST, {"q": "没有这家"})
    assert names(response) == []
    assert 'data-testid="no-match"' in response.content.decode()
    # An unknown stage code is not a filter that silently empties the list.
    assert len(names(client.get(LIST, {"stage": "nope"}))) == 3


def test_the_table_sorts_by_its_columns(world, en):
    make_opportunity(world.a, customer_name="甲公司", amount=Decimal("5"))
    make_opportunity(world.a, customer_name="乙公司")
    make_opportunity(world.a, customer_name="丙公司", amount=Decimal("7"))
    client = en(world.a.manager)
    assert names(client.get(LIST, {"sort": "-amount"})) == [
        "丙公司 · 液压机",
        "甲公司 · 液压机",
        "乙公司 · 液压机",
    ]
    assert names(client.get(LIST, {"sort": "amount"})) == [
        "甲公司 · 液压机",
        "丙公司 · 液压机",
        "乙公司 · 液压机",
    ]
    newest = names(client.get(LIST))
    assert newest == ["丙公司 · 液压机", "乙公司 · 液压机", "甲公司 · 液压机"]
    for key in ("name", "customer", "stage", "-status", "probability", "valid", "owner"):
        assert len(names(client.get(LIST, {"sort": key}))) == 3, key
    assert len(names(client.get(LIST, {"sort": "expected_close"}))) == 3
    assert len(names(client.get(LIST, {"sort": "-last_activity"}))) == 3


def test_the_table_pages_and_keeps_its_query_count(world, login):
    reps = [MembershipFactory(tenant=world.a.tenant, role=Role.REP) for _ in range(3)]

    def add(n, start):
        for i in range(start, start + n):
            make_opportunity(world.a, customer_name=f"客户{i:03d}", owner=reps[i % 3])

    client = login(world.a.manager)
    add(3, 0)
    client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        assert len(names(client.get(LIST))) == 3
    add(52, 3)
    with CaptureQueriesContext(connection) as many:
        assert len(names(client.get(LIST))) == 50
    assert len(many) == len(few), [q["sql"][:160] for q in many.captured_queries]
    assert len(names(client.get(LIST, {"page": 2}))) == 5


def test_the_table_empty_states(world, en):
    response = en(world.a.rep).get(LIST)
    body = response.content.decode()
    assert 'data-testid="no-opportunities"' in body
    assert 'data-testid="opportunity-filters"' not in body
    make_opportunity(world.a)
    body = en(world.a.rep).get(LIST, {"status": "won"}).content.decode()
    assert 'data-testid="no-match"' in body


def test_rows_have_checkboxes_for_the_bulk_move_but_not_closed_ones(world, en):
    open_one = make_opportunity(world.a, customer_name="甲公司")
    lost = make_opportunity(world.a, customer_name="乙公司")
    lose(world.a, lost)
    response = en(world.a.rep).get(LIST)
    body = response.content.decode()
    assert 'data-testid="bulk-form"' in body
    assert f'name="ids" value="{open_one.public_id}"' in body
    assert f'value="{lost.public_id}"' not in body
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    body = en(marketing).get(LIST).content.decode()
    assert 'data-testid="bulk-form"' not in body and 'name="ids"' not in body


# -- the CSV ------------------------------------------------------------------------------------


def test_the_csv_has_the_contract_columns_first_and_the_values(world, en):
    opp = make_opportunity(
        world.a,
        customer_name="恒力液压",
        amount=Decimal("480000"),
        expected_close=date(2026, 9, 15),
        budget_band="100k_500k",
    )
    complete(world.a, opp, "contact")
    advance(world.a, opp, "needs")
    make_opportunity(world.b, customer_name="外租户")
    header, *rows = csv_rows(en(world.a.manager).get(LIST, {"_export": "csv"}))
    assert header[:7] == CSV_FIRST
    for name in ("name", "customer", "expected_close", "budget_band"):
        assert name in header
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["id"] == str(opp.public_id)
    assert row["stage"] == "needs"
    assert row["status"] == "open"
    assert Decimal(row["amount"]) == Decimal("480000")
    assert row["probability"] == "25"
    assert row["valid"] == "false"
    assert row["owner"] == world.a.rep.user.username
    assert row["customer"] == "恒力液压"
    assert row["expected_close"] == "2026-09"
    assert row["budget_band"] == "100k_500k"


def test_the_csv_follows_the_filters_and_the_members_sight(world, en):
    make_opportunity(world.a, customer_name="甲公司")
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    theirs = make_opportunity(world.a, customer_name="乙公司", owner=other_rep)
    lose(world.a, theirs)
    _header, *rows = csv_rows(en(world.a.rep).get(LIST, {"_export": "csv"}))
    assert [r[6] for r in rows] == [world.a.rep.user.username]
    _header, *rows = csv_rows(en(world.a.manager).get(LIST, {"_export": "csv", "status": "lost"}))
    assert [(r[0], r[2], r[4]) for r in rows] == [(str(theirs.public_id), "lost", "0")]


def test_the_background_export_writes_the_same_rows(world, en):
    for i in range(3):
        make_opportunity(world.a, customer_name=f"客户{i}", amount=Decimal(1000 * i))
    source = background.get_source(KIND)
    assert source is not None and source.list_url == "opportunities:list"
    assert world.a.rep.role in source.roles
    streamed = csv_rows(en(world.a.manager).get(LIST, {"_export": "csv", "sort": "-amount"}))
    with tenant_context(world.a.tenant):
        stem, rows = opportunity_rows(world.a.manager, QueryDict("sort=-amount"))
        assert stem.startswith("opportunities-")
        assert list(rows) == streamed
        assert source.count(world.a.manager, QueryDict("")) == 3
