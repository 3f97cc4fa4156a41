"""The daily board's page (F15): the rep's ranked board with its actions, whose board a
member may open, a constant number of queries, and the board as the rep's home page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Contact
from leads.models import LeadStatus, RepProfile, Verification, Zone
from leads.verification import lead_verify
from tests.factories import MembershipFactory
from tests.leads.board_helpers import (
    BOARD,
    CLOSE,
    SH,
    SUMMARIES,
    channel_fixture,  # noqa: F401 (the channel fixture)
    customer,
    follow_up,
)
from tests.leads.factories import make_assigned_lead, make_lead, make_rep

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


# -- the page ----------------------------------------------------------------------------------


def test_the_rep_sees_their_ranked_board_with_the_actions(world, en, channel):
    t, rep = world.a.tenant, world.a.rep
    lead = make_assigned_lead(
        t, rep, timezone.now() - timedelta(hours=2), channel, company="宁波恒力液压科技有限公司"
    )
    acct = customer(t, "苏州精测仪器有限公司", "A", rep)
    interaction = follow_up(
        rep,
        at=timezone.now() - timedelta(days=2),
        due=timezone.localdate(timezone.now(), SH) - timedelta(days=1),
        customer=acct,
    )
    response = en(rep).get(BOARD)
    assert response.status_code == 200
    text = response.text
    assert text.count('data-testid="board-item"') == 2
    # The overdue A-level follow-up outranks the fresh C-level lead.
    assert text.index(f'id="fu-{interaction.public_id}"') < text.index(
        f'id="lead-{lead.public_id}"'
    )
    assert 'data-testid="count-total">2<' in text
    assert 'data-testid="count-verify">1<' in text
    assert 'data-testid="count-follow-up">1<' in text
    assert 'data-testid="count-overdue">1<' in text
    assert reverse("leads:verify", args=[lead.public_id]) in text
    assert 'value="valid_visit"' in text and 'name="invalid_reason"' in text
    assert reverse("leads:follow_up", args=[lead.public_id]) in text
    assert reverse("customers:follow_up", args=[acct.public_id]) in text
    assert 'data-testid="rank-breakdown"' in text
    assert 'data-testid="close-day"' in text
    # The later stages' slots say what they will hold; nothing fake in them.
    assert 'data-testid="slot-stalled_opportunities"' in text
    assert 'data-testid="slot-at_risk_customers"' in text
    # Collapsed sections are remembered (the board's script, a static file under the CSP).
    assert 'src="/static/crm/board.js"' in text
    assert "crm.board.collapsed" in (ROOT / "static/crm/board.js").read_text()


def test_an_empty_board_says_what_to_do(world, login):
    text = login(world.a.rep).get(BOARD).text
    assert 'data-testid="board-empty"' in text
    assert 'data-testid="board-item"' not in text


def test_a_manager_opens_a_reps_board_read_only(world, login, channel):
    t, rep = world.a.tenant, world.a.rep
    lead = make_assigned_lead(t, rep, timezone.now(), channel, company="经理查看的线索")
    for manager in (world.a.manager, world.a.admin):
        response = login(manager).get(BOARD, {"rep": str(rep.public_id)})
        assert response.status_code == 200
        text = response.text
        assert "经理查看的线索" in text
        assert f'id="lead-{lead.public_id}"' in text
        assert reverse("leads:verify", args=[lead.public_id]) not in text  # the owner's
        assert 'data-testid="close-day"' not in text
        assert f'value="{rep.public_id}" selected' in text  # the rep picker


def test_a_rep_may_not_open_another_reps_board(world, login, channel):
    t = world.a.tenant
    other = make_rep(t, "other-rep")
    client = login(world.a.rep)
    assert client.get(BOARD, {"rep": str(other.public_id)}).status_code == 403
    assert client.get(BOARD, {"rep": str(world.a.manager.public_id)}).status_code == 403
    assert client.get(BOARD, {"rep": str(world.a.rep.public_id)}).status_code == 200


def test_another_tenants_member_is_not_found(world, login):
    for who in (world.a.manager, world.a.rep):
        client = login(who)
        assert client.get(BOARD, {"rep": str(world.b.rep.public_id)}).status_code == 404
        assert client.get(BOARD, {"rep": "not-a-uuid"}).status_code == 404


def test_the_board_is_for_sales(world, login):
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    assert login(marketing).get(BOARD).status_code == 403
    assert login(marketing).post(CLOSE).status_code == 403


def _populate(tenant, rep, channel, count: int, start: int = 0) -> None:
    """`count` items of every kind, with and without customers and contacts."""
    now = timezone.now()
    today = timezone.localdate(now, SH)
    for i in range(start, start + count):
        kind = i % 4
        if kind == 0:
            acct = customer(tenant, f"客户{i}", "ABC"[i % 3], rep) if i % 8 == 0 else None
            make_assigned_lead(
                tenant, rep, now - timedelta(hours=i), channel, company=f"线索{i}", customer=acct
            )
        elif kind == 1:
            original = make_lead(tenant, channel, company=f"原线索{i}", status=LeadStatus.VALID)
            make_assigned_lead(
                tenant,
                rep,
                now - timedelta(hours=i),
                channel,
                company=f"回访{i}",
                revisit_of=original,
            )
        elif kind == 2:
            lead = make_assigned_lead(
                tenant,
                rep,
                now - timedelta(days=3),
                channel,
                company=f"已验证{i}",
                phone=f"+86139{i:08d}",  # a customer of its own (one per phone)
            )
            with tenant_context(tenant):
                lead_verify(
                    tenant=lead.tenant,
                    acting_member=rep,
                    lead=lead,
                    outcome=Verification.VALID_VISIT,
                    visit_date=today,
                    now=now - timedelta(days=3),
                )
            follow_up(rep, at=now - timedelta(days=3), due=today - timedelta(days=1), lead=lead)
        else:
            acct = customer(tenant, f"老客户{i}", "ABC"[i % 3], rep)
            with tenant_context(tenant):
                Contact.objects.create(tenant=tenant, customer=acct, name=f"联系人{i}")
            follow_up(rep, at=now - timedelta(days=1), due=today, customer=acct)


@pytest.mark.parametrize("viewer", ["rep", "manager"])
def test_the_board_takes_the_same_queries_for_5_and_60_items(
    world, login, channel, viewer, django_assert_max_num_queries
):
    t, rep = world.a.tenant, world.a.rep
    client = login(getattr(world.a, viewer))
    params = {"rep": str(rep.public_id)} if viewer == "manager" else {}
    _populate(t, rep, channel, 5)
    assert client.get(BOARD, params).status_code == 200  # warm up: the defaults exist now
    with CaptureQueriesContext(connection) as five:
        response = client.get(BOARD, params)
    assert response.text.count('data-testid="board-item"') == 5
    _populate(t, rep, channel, 55, start=5)
    with django_assert_max_num_queries(len(five)) as sixty:
        response = client.get(BOARD, params)
    assert response.text.count('data-testid="board-item"') == 60
    assert len(sixty) == len(five)
    # session, user, seats, tenant, settings, leads, follow-ups …, and one per section
    # (leads to rescue; other apps': stalled opportunities, service leads, at-risk customers,
    # tasks from automation rules)
    assert len(five) <= 20


def test_a_paused_rep_finds_the_training_card_on_the_board(world, login):
    with tenant_context(world.a.tenant):
        RepProfile.objects.create(
            tenant=world.a.tenant,
            membership=world.a.rep,
            zone=Zone.OBSERVATION,
            zone_since=timezone.now(),
            late_streak=3,
        )
    text = login(world.a.rep).get(BOARD).text
    assert 'data-testid="home-cards"' in text
    assert 'data-testid="training-card"' in text
    assert 'data-testid="training-ack"' in text


# -- the board is the rep's home page ---------------------------------------------------------


def test_a_rep_opening_home_lands_on_the_board(world, login):
    response = login(world.a.rep).get("/")
    assert response.status_code == 302 and response.url == BOARD
    response = login(world.a.rep).get("/", follow=True)
    assert response.status_code == 200
    assert 'data-testid="home-title"' in response.text
    assert world.a.tenant.name in response.text


def test_managers_and_admins_land_on_their_dashboard(world, login):
    for who in (world.a.manager, world.a.admin):
        response = login(who).get("/", follow=True)
        assert response.redirect_chain[-1][0] == reverse("dashboard")
        assert response.status_code == 200
        assert SUMMARIES in response.text  # the closed days are one click away


def test_the_rep_has_the_board_in_the_navigation(world, login):
    text = login(world.a.rep).get(BOARD).text
    assert f'class="nav-link active" href="{BOARD}"' in text
