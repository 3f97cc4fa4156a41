"""The daily board (F15) and closing the day (F19) on real rows: the rank's arithmetic, each
kind of item, whose board a member may open, a constant number of queries, the day's
summary across a day boundary in Asia/Shanghai, the managers' page of closed days, and
the board as the rep's home page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from crm.models import Role
from crm.tenancy import tenant_context
from customers import services
from customers.models import Contact, Customer, Interaction, PresetKind
from leads.board import ranking as board
from leads.followups_services import lead_follow_up
from leads.models import (
    BoardSettings,
    DailySummary,
    Lead,
    LeadStatus,
    RepProfile,
    Verification,
    Zone,
)
from leads.verification import invalid_reasons, lead_verify
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead, make_channel, make_lead, make_rep

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
BOARD = reverse("board:board")
CLOSE = reverse("board:close")
SUMMARIES = reverse("board:summaries")
HTMX = {"HX-Request": "true"}

ROOT = Path(__file__).resolve().parents[2]


def sh(*args) -> datetime:
    """A moment in Asia/Shanghai (the tenants' default time zone)."""
    return datetime(*args, tzinfo=SH)


def action(name="电话回访"):
    return services.presets(PresetKind.ACTION).get(name=name)


def customer(tenant, name, level="C", owner=None) -> Customer:
    with tenant_context(tenant):
        return Customer.objects.create(tenant=tenant, name=name, level=level, owner=owner)


def follow_up(by, *, at, due, lead=None, customer=None, note="", tags=(), action_name="电话回访"):
    """A follow-up logged through the real service, `at` some moment, due on `due`."""
    with tenant_context(by.tenant):
        fields = {
            "tenant": by.tenant,
            "acting_member": by,
            "channel": "phone",
            "talk_tags": tags,
            "note": note,
            "next_action": action(action_name),
            "next_action_due": due,
            "at": at,
        }
        if lead is not None:  # on the lead: its touch and timeline too
            return lead_follow_up(lead=lead, **fields)
        return services.interaction_log(customer=customer, **fields)


def weights(tenant, **values) -> BoardSettings:
    with tenant_context(tenant):
        settings = board.board_settings()
        for name, value in values.items():
            setattr(settings, name, value)
        settings.save()
        return settings


def board_of(member, now) -> board.Board:
    with tenant_context(member.tenant):
        return board.board_for(member, now=now)


@pytest.fixture
def channel(world):
    return make_channel(world.a.tenant, name="官网表单")


# -- the rank ---------------------------------------------------------------------------------


def test_settings_are_one_row_per_tenant_created_with_the_defaults(world):
    with tenant_context(world.a.tenant):
        settings = board.board_settings()
        assert (settings.level_a, settings.level_b, settings.level_c) == (3.0, 2.0, 1.0)
        assert settings.urgency_verify == 3.0 and settings.overdue_per_hour == 0.05
        assert board.board_settings().pk == settings.pk
        assert BoardSettings.objects.count() == 1
    with tenant_context(world.b.tenant):
        assert board.board_settings().pk != settings.pk


def test_rank_is_level_times_urgency_times_time_overdue(world, channel, english):
    t, rep = world.a.tenant, world.a.rep
    now = sh(2026, 3, 10, 10, 0)
    weights(
        t,
        level_a=4,
        level_b=2,
        level_c=1,
        urgency_verify=3,
        urgency_overdue=2.5,
        urgency_due=1.5,
        urgency_revisit=2,
        overdue_per_hour=0.1,
    )
    key_account = customer(t, "上海瑞金医疗器械有限公司", "A", rep)
    growing = customer(t, "苏州精测仪器有限公司", "B", rep)
    # No customer, a C-grade source (not scored): level C; assigned 30 h ago, so 6 h past
    # the 24 h clock.
    late = make_assigned_lead(
        t, rep, now - timedelta(hours=30), channel, company="迟到公司", source_grade="C"
    )
    # An A-level customer's lead, 2 h into its clock: not overdue.
    fresh = make_assigned_lead(
        t, rep, now - timedelta(hours=2), channel, company="瑞金", customer=key_account
    )
    original = make_lead(t, channel, company="回访原线索", status=LeadStatus.VALID)
    revisit = make_assigned_lead(
        t,
        rep,
        now - timedelta(hours=1),
        channel,
        company="回访",
        revisit_of=original,
        source_grade="C",
    )
    # Due 2026-03-08: overdue since 00:00 that day in Shanghai, 58 h before now.
    overdue = follow_up(rep, at=sh(2026, 3, 7, 9, 0), due=date(2026, 3, 8), customer=growing)
    due_today = follow_up(rep, at=sh(2026, 3, 9, 9, 0), due=date(2026, 3, 10), customer=key_account)

    items = {item.key: item for item in board_of(rep, now).items}
    assert len(items) == 5
    late_item = items[f"lead-{late.public_id}"]
    assert (late_item.kind, late_item.level, late_item.urgency) == ("verify", "C", "verify")
    assert late_item.hours_overdue == pytest.approx(6)
    assert late_item.rank == pytest.approx(1 * 3 * (1 + 6 * 0.1))
    fresh_item = items[f"lead-{fresh.public_id}"]
    assert fresh_item.level == "A" and fresh_item.hours_overdue == 0
    assert fresh_item.rank == pytest.approx(4 * 3 * 1)
    assert fresh_item.hours_left == pytest.approx(22)
    revisit_item = items[f"lead-{revisit.public_id}"]
    assert (revisit_item.kind, revisit_item.urgency) == ("revisit", "revisit")
    assert revisit_item.rank == pytest.approx(1 * 2 * 1)
    overdue_item = items[f"fu-{overdue.public_id}"]
    assert (overdue_item.kind, overdue_item.level, overdue_item.urgency) == (
        "follow_up",
        "B",
        "overdue",
    )
    assert overdue_item.hours_overdue == pytest.approx(58)
    assert overdue_item.rank == pytest.approx(2 * 2.5 * (1 + 58 * 0.1))
    today_item = items[f"fu-{due_today.public_id}"]
    assert today_item.urgency == "due" and today_item.hours_overdue == 0
    assert today_item.rank == pytest.approx(4 * 1.5 * 1)

    ranked = [i.key for i in board_of(rep, now).items]
    assert ranked == [
        f"fu-{overdue.public_id}",  # 34
        f"lead-{fresh.public_id}",  # 12
        f"fu-{due_today.public_id}",  # 6
        f"lead-{late.public_id}",  # 4.8
        f"lead-{revisit.public_id}",  # 2
    ]
    assert "level B ×2" in overdue_item.breakdown()
    assert "(1 + 58 h × 0.1) = 34" in overdue_item.breakdown()


def test_leads_to_verify_rank_by_their_lead_score_and_source_grade(world, en, channel):
    """An A-grade "急需…立即报价" scoring 80 comes before a routine B-grade enquiry at the
    base score, which comes before a C-grade import scoring 30, at the same age; the
    popover says why. The base score is the policy's (50 by default)."""
    t, rep = world.a.tenant, world.a.rep
    now = timezone.now()
    at = now - timedelta(hours=2)
    urgent = make_assigned_lead(
        t,
        rep,
        at,
        channel,
        company="急需公司",
        message="急需2台移动DR，请立即报价",
        source_grade="A",
        score=80,
        phone="+8613900000001",
    )
    routine = make_assigned_lead(
        t, rep, at, channel, company="咨询公司", source_grade="B", score=50, phone="+8613900000002"
    )
    cold = make_assigned_lead(
        t, rep, at, channel, company="导入公司", source_grade="C", score=30, phone="+8613900000003"
    )
    items = board_of(rep, now).items
    assert [i.lead for i in items] == [urgent, routine, cold]
    first, second, third = items
    assert (first.level, first.level_of, first.score_factor) == ("A", "grade", 1.6)
    assert first.rank == pytest.approx(3 * 1.6 * 3)
    assert second.rank == pytest.approx(2 * 1 * 3)
    assert third.rank == pytest.approx(1 * 0.6 * 3)
    with translation.override("en"):
        assert first.breakdown() == (
            "source grade A ×3 · lead score 80 ×1.6 · lead to verify ×3 · (1 + 0 h × 0.05) = 14.4"
        )
    # Time still counts: a routine lead 30 h past its clock (2 × 1 × 3 × 2.5 = 15) passes
    # the urgent fresh one.
    make_assigned_lead(
        t,
        rep,
        now - timedelta(hours=54),
        channel,
        company="超时公司",
        source_grade="B",
        score=50,
        phone="+8613900000004",
    )
    assert board_of(rep, now).items[0].lead.company == "超时公司"
    page = en(rep).get(BOARD).text
    assert "Source grade" in page and "Lead score" in page and "80 ÷ 50" in page


def test_a_suspect_lead_shows_its_warning_on_the_card(world, en, channel):
    t, rep = world.a.tenant, world.a.rep
    lead = make_assigned_lead(
        t,
        rep,
        timezone.now() - timedelta(hours=1),
        channel,
        company="测试公司",
        is_suspect=True,
        suspect_reasons=[{"code": "phone_placeholder", "phone": "+8613800000000"}],
    )
    plain = make_assigned_lead(
        t,
        rep,
        timezone.now() - timedelta(hours=1),
        channel,
        company="正常公司",
        phone="+8613900000005",
    )
    page = en(rep).get(BOARD).text
    card = page[page.index(f'id="lead-{lead.public_id}"') :]
    card = card[: card.index("</li>")]
    assert 'data-testid="item-suspect"' in card and "⚠" in card
    assert "Placeholder-like phone number" in card
    other = page[page.index(f'id="lead-{plain.public_id}"') :]
    assert 'data-testid="item-suspect"' not in other[: other.index("</li>")]


def test_a_different_weighting_reorders_the_board(world, channel):
    t, rep = world.a.tenant, world.a.rep
    now = sh(2026, 3, 10, 10, 0)
    old = make_assigned_lead(t, rep, now - timedelta(hours=48), channel, company="老线索")
    key_account = customer(t, "大客户", "A", rep)
    fresh = make_assigned_lead(t, rep, now, channel, company="新线索", customer=key_account)
    weights(t, overdue_per_hour=0.5)  # C: 3 × (1 + 24 × 0.5) = 39 > A: 9
    assert [i.lead for i in board_of(rep, now).items] == [old, fresh]
    weights(t, overdue_per_hour=0)  # time no longer counts: A first
    assert [i.lead for i in board_of(rep, now).items] == [fresh, old]


def test_a_follow_up_is_due_by_the_day_in_the_tenants_time_zone(world):
    t, rep = world.a.tenant, world.a.rep
    acct = customer(t, "杭州某医院", "C", rep)
    other = customer(t, "宁波某医院", "C", rep)
    follow_up(rep, at=sh(2026, 3, 8, 9, 0), due=date(2026, 3, 10), customer=acct)
    follow_up(rep, at=sh(2026, 3, 8, 9, 0), due=date(2026, 3, 9), customer=other)
    # 00:30 on 2026-03-10 in Shanghai is still 2026-03-09 in UTC.
    now = sh(2026, 3, 10, 0, 30)
    assert now.astimezone(UTC).date() == date(2026, 3, 9)
    items = {i.customer.name: i for i in board_of(rep, now).items}
    assert items["杭州某医院"].urgency == "due" and items["杭州某医院"].hours_overdue == 0
    assert items["宁波某医院"].urgency == "overdue"
    assert items["宁波某医院"].hours_overdue == pytest.approx(24.5)
    # The evening before (Shanghai), the first is not due yet: not on the board.
    keys = [i.customer.name for i in board_of(rep, sh(2026, 3, 9, 23, 0)).items]
    assert keys == ["宁波某医院"]


def test_the_board_holds_only_the_reps_open_work(world, channel):
    t, rep = world.a.tenant, world.a.rep
    other = make_rep(t, "other-rep")
    now = timezone.now()
    mine = make_assigned_lead(t, rep, now - timedelta(hours=3), channel, company="我的线索")
    make_assigned_lead(t, other, now - timedelta(hours=3), channel, company="别人的线索")
    make_lead(t, channel, company="池中线索", status=LeadStatus.NEW, owner=None)
    verified = make_assigned_lead(t, rep, now - timedelta(hours=5), channel, company="已验证")
    with tenant_context(t):
        lead_verify(
            tenant=verified.tenant,
            acting_member=rep,
            lead=verified,
            outcome=Verification.VALID_VISIT,
            visit_date=timezone.localdate(now, SH) + timedelta(days=3),
            now=now,
        )
    acct = customer(t, "已跟进客户", "B", rep)
    yesterday = timezone.localdate(now, SH) - timedelta(days=1)
    # Logged yesterday, due today; then followed up again: the first one is done.
    first = follow_up(
        rep, at=now - timedelta(days=1), due=yesterday + timedelta(days=1), customer=acct
    )
    second = follow_up(rep, at=now, due=yesterday + timedelta(days=3), customer=acct)
    follow_up(other, at=now, due=yesterday + timedelta(days=1), customer=customer(t, "他人客户"))
    follow_up(rep, at=now, due=yesterday + timedelta(days=2), lead=verified)  # due tomorrow
    with tenant_context(t):
        assert Interaction.objects.get(pk=first.pk).next_done_at is not None
    items = board_of(rep, now).items
    assert [i.lead for i in items] == [mine]
    assert second.pk not in {i.interaction.pk for i in items if i.interaction}


def test_a_valid_verdict_keeps_the_lead_on_the_board_as_its_next_step(world, channel):
    t, rep = world.a.tenant, world.a.rep
    now = sh(2026, 3, 10, 10, 0)
    visit = make_assigned_lead(t, rep, now - timedelta(hours=2), channel, company="拜访公司")
    more = make_assigned_lead(
        t, rep, now - timedelta(hours=1), channel, company="补充公司", phone="+8613900001111"
    )
    with tenant_context(t):
        lead_verify(
            tenant=visit.tenant,
            acting_member=rep,
            lead=visit,
            outcome=Verification.VALID_VISIT,
            visit_date=date(2026, 3, 10),
            now=now,
        )
        lead_verify(
            tenant=more.tenant,
            acting_member=rep,
            lead=more,
            outcome=Verification.VALID_MORE_INFO,
            next_action=action("发送方案"),
            next_action_due=date(2026, 3, 12),
            now=now,
        )
        steps = {i.lead_id: i for i in Interaction.objects.filter(kind="verification")}
        assert steps[visit.pk].next_action.name == "上门拜访"
        assert steps[visit.pk].next_action_due == date(2026, 3, 10)
        assert steps[more.pk].next_action.name == "发送方案"
        # The verification is the one touch: the step adds none.
        assert [lead.touch_count for lead in Lead.objects.filter(pk__in=[visit.pk, more.pk])] == [
            1,
            1,
        ]
    # The visit is today: on the board, as a follow-up due today, not as a lead to verify.
    items = board_of(rep, now + timedelta(minutes=5)).items
    assert [(i.kind, i.urgency, i.lead) for i in items] == [("follow_up", "due", visit)]
    assert items[0].interaction == steps[visit.pk]
    # The missing information is due on the 12th: on the board that day.
    items = board_of(rep, sh(2026, 3, 12, 9, 0)).items
    assert {(i.kind, i.lead.pk) for i in items} == {("follow_up", visit.pk), ("follow_up", more.pk)}


def test_the_board_asks_a_valid_verdict_for_its_next_step_and_shows_it_in_place(world, en, channel):
    t, rep = world.a.tenant, world.a.rep
    lead = make_assigned_lead(t, rep, timezone.now() - timedelta(hours=1), channel)
    verify = reverse("leads:verify", args=[lead.public_id])
    client = en(rep)
    page = client.get(BOARD).text
    for needed in ('name="visit_date"', 'name="next_action"', 'name="next_action_due"'):
        assert needed in page, needed
    assert 'hx-target="closest [data-verify-slot]"' in page

    # Nothing chosen: the fields say what is missing, in place, and nothing is saved.
    response = client.post(verify, {"outcome": "valid_visit"}, headers=HTMX)
    assert response.status_code == 422
    assert 'data-testid="verify-error-visit_date"' in response.text
    assert "Choose the date of the booked visit." in response.text
    assert 'hx-post="' + verify + '"' in response.text  # the forms again, still in place
    response = client.post(verify, {"outcome": "valid_more_info"}, headers=HTMX)
    assert response.status_code == 422
    assert "Choose the next action." in response.text
    assert "Say by when the next action is due." in response.text
    response = client.post(
        verify, {"outcome": "valid_visit", "visit_date": "2026-13-40"}, headers=HTMX
    )
    assert response.status_code == 422 and "Enter a date like 2026-03-10." in response.text
    past = timezone.localdate(timezone.now(), SH) - timedelta(days=1)
    response = client.post(
        verify, {"outcome": "valid_visit", "visit_date": past.isoformat()}, headers=HTMX
    )
    assert response.status_code == 422 and "The visit cannot be in the past." in response.text
    with tenant_context(t):
        assert Lead.objects.get(pk=lead.pk).verification == ""

    today = timezone.localdate(timezone.now(), SH)
    response = client.post(
        verify, {"outcome": "valid_visit", "visit_date": today.isoformat()}, headers=HTMX
    )
    assert response.status_code == 200
    assert 'data-testid="next-step"' in response.text and "上门拜访" in response.text
    with tenant_context(t):
        step = Interaction.objects.get(lead=lead)
    page = client.get(BOARD).text
    assert f'id="fu-{step.public_id}"' in page
    assert 'data-testid="count-verify">0<' in page
    assert 'data-testid="count-follow-up">1<' in page


def test_verifying_a_lead_takes_it_off_the_board(world, channel):
    t, rep = world.a.tenant, world.a.rep
    lead = make_assigned_lead(t, rep, timezone.now() - timedelta(hours=1), channel)
    assert len(board_of(rep, timezone.now()).items) == 1
    with tenant_context(t):
        reason = invalid_reasons().first()
        lead_verify(
            tenant=lead.tenant,
            acting_member=rep,
            lead=lead,
            outcome=Verification.INVALID_CONTACT,
            invalid_reason=reason,
        )
    assert board_of(rep, timezone.now()).items == []


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
    assert len(five) <= 16  # session, user, seats, tenant, settings, leads, follow-ups …


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


def test_managers_and_admins_keep_the_home_page(world, login):
    for who in (world.a.manager, world.a.admin):
        response = login(who).get("/")
        assert response.status_code == 200
        assert 'data-testid="home-items"' in response.text
        assert SUMMARIES in response.text  # the closed days are one click away


def test_the_rep_has_the_board_in_the_navigation(world, login):
    text = login(world.a.rep).get(BOARD).text
    assert f'class="nav-link active" href="{BOARD}"' in text


# -- closing the day ---------------------------------------------------------------------------


def test_closing_the_day_counts_the_day_in_shanghai(world, channel):
    t, rep = world.a.tenant, world.a.rep
    # 23:30 on Tuesday 2026-03-10 in Shanghai.
    now = sh(2026, 3, 10, 23, 30)
    day = date(2026, 3, 10)
    # Contacts: 00:10 today in Shanghai (still 03-09 in UTC) counts; 23:50 yesterday not.
    early = customer(t, "清晨客户", "B", rep)
    follow_up(rep, at=sh(2026, 3, 10, 0, 10), due=date(2026, 3, 13), customer=early)
    assert sh(2026, 3, 10, 0, 10).astimezone(UTC).date() == date(2026, 3, 9)
    follow_up(rep, at=sh(2026, 3, 9, 23, 50), due=date(2026, 3, 13), customer=customer(t, "昨夜"))
    # A loop closed today (an agreement in the note); tomorrow's action on it.
    agreed = customer(t, "同意客户", "A", rep)
    follow_up(
        rep,
        at=sh(2026, 3, 10, 15, 0),
        due=date(2026, 3, 11),
        customer=agreed,
        note="客户同意下周演示",
        action_name="安排演示",
    )
    # A verification today.
    verified = make_assigned_lead(t, rep, sh(2026, 3, 10, 8, 0), channel, company="今日验证")
    with tenant_context(t):
        lead_verify(
            tenant=verified.tenant,
            acting_member=rep,
            lead=verified,
            outcome=Verification.VALID_MORE_INFO,
            next_action=action("发送方案"),
            next_action_due=date(2026, 3, 13),
            now=sh(2026, 3, 10, 9),
        )
    # Overdue now: a lead past its 24 h clock, and a follow-up due yesterday.
    make_assigned_lead(t, rep, sh(2026, 3, 9, 20, 0), channel, company="超时线索")
    follow_up(rep, at=sh(2026, 3, 8, 10, 0), due=date(2026, 3, 9), customer=customer(t, "逾期"))
    # Tomorrow: a lead whose clock ends 2026-03-11 10:00; one ending at 23:40 tonight is not.
    ends_tomorrow = make_assigned_lead(t, rep, sh(2026, 3, 10, 10, 0), channel, company="明天到期")
    make_assigned_lead(t, rep, sh(2026, 3, 9, 23, 40), channel, company="今晚到期")

    with tenant_context(t):
        summary = board.day_close(rep, now=now)
    assert summary.day == day
    assert summary.contacts == 3  # two follow-ups today + one verification
    assert summary.details["interactions"] == 2 and summary.details["verifications"] == 1
    assert summary.loops_closed == 1
    assert summary.overdue_left == 2
    assert summary.details["overdue"] == {"verify": 1, "revisit": 0, "follow_up": 1}
    tomorrow = {(a["kind"], a["who"]) for a in summary.tomorrow}
    assert ("follow_up", "同意客户") in tomorrow
    assert ("verify", "明天到期 · 王工") in tomorrow  # company · contact
    assert ("verify", "今晚到期 · 王工") not in tomorrow  # its clock ends tonight, not overdue yet
    follow_up_action = next(a for a in summary.tomorrow if a["kind"] == "follow_up")
    assert follow_up_action["what"] == "安排演示"
    verify_action = next(a for a in summary.tomorrow if a["kind"] == "verify")
    assert verify_action["lead"] == str(ends_tomorrow.public_id)
    assert datetime.fromisoformat(verify_action["due"]) == sh(2026, 3, 11, 10, 0)

    # Closing again the same day updates the one row.
    with tenant_context(t):
        lead_verify(
            tenant=ends_tomorrow.tenant,
            acting_member=rep,
            lead=ends_tomorrow,
            outcome=Verification.VALID_VISIT,
            visit_date=date(2026, 3, 16),
            now=now,
        )
        again = board.day_close(rep, now=now + timedelta(minutes=10))
        assert DailySummary.objects.filter(membership=rep).count() == 1
    assert again.pk == summary.pk
    assert again.contacts == 4
    assert [a["kind"] for a in again.tomorrow] == ["follow_up"]

    # 00:30 on 03-11 in Shanghai is still 03-10 in UTC: it is a new day, a second row.
    after_midnight = sh(2026, 3, 11, 0, 30)
    assert after_midnight.astimezone(UTC).date() == day
    with tenant_context(t):
        next_day = board.day_close(rep, now=after_midnight)
        assert DailySummary.objects.filter(membership=rep).count() == 2
    assert next_day.day == date(2026, 3, 11)
    assert next_day.contacts == 0 and next_day.loops_closed == 0


def test_closing_the_day_on_the_board_shows_the_summary(world, en, channel):
    t, rep = world.a.tenant, world.a.rep
    lead = make_assigned_lead(t, rep, timezone.now() - timedelta(hours=1), channel)
    with tenant_context(t):
        lead_verify(
            tenant=lead.tenant,
            acting_member=rep,
            lead=lead,
            outcome=Verification.VALID_VISIT,
            visit_date=timezone.localdate() + timedelta(days=3),
        )
    client = en(rep)
    response = client.post(CLOSE, headers=HTMX)
    assert response.status_code == 200
    text = response.text
    assert "<html" not in text
    assert 'data-testid="day-summary"' in text
    assert 'data-testid="summary-contacts">1<' in text
    with tenant_context(t):
        summary = DailySummary.objects.get(membership=rep)
    assert summary.contacts == 1 and summary.day == timezone.localdate(timezone.now(), SH)
    # Without htmx: back to the board, which shows the closed day.
    response = client.post(CLOSE)
    assert response.status_code == 302 and response.url == BOARD
    page = client.get(BOARD).text
    assert 'data-testid="day-summary"' in page
    assert "Close the day again" in page
    assert client.get(CLOSE).status_code == 405


# -- the managers' page of closed days ---------------------------------------------------------


def test_the_manager_sees_every_reps_day_and_who_did_not_close_it(world, en):
    t, rep = world.a.tenant, world.a.rep
    quiet = make_rep(t, "quiet-rep")
    today = timezone.localdate(timezone.now(), SH)
    with tenant_context(t):
        board.day_close(rep)
    with tenant_context(world.b.tenant):
        board.day_close(world.b.rep)
    response = en(world.a.manager).get(SUMMARIES)
    assert response.status_code == 200
    text = response.text
    assert text.count('data-testid="summary-row"') == 2
    assert f'data-member="{rep.public_id}"' in text
    assert f'data-member="{quiet.public_id}"' in text
    assert f'data-member="{world.b.rep.public_id}"' not in text
    assert text.count('data-testid="not-closed"') == 1
    assert "Did not close the day" in text
    assert "1 of 2 closed their day" in text
    assert f"{BOARD}?rep={quiet.public_id}" in text
    # Another day: nobody closed it.
    yesterday = today - timedelta(days=1)
    text = en(world.a.admin).get(SUMMARIES, {"day": yesterday.isoformat()}).text
    assert text.count('data-testid="not-closed"') == 2
    assert yesterday.isoformat() in text


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("yesterday", "Enter a valid date."),
        ("2026-02-30", "Enter a valid date."),
        ("2030-01-01", "is in the future: choose today or an earlier day"),
    ],
)
def test_the_closed_days_refuse_a_bad_or_future_day(world, en, day, message):
    """Not a date, or a day that has not happened yet: refused (400) with the error on the
    day field, and no summaries shown as if they were that day's."""
    response = en(world.a.manager).get(SUMMARIES, {"day": day})
    assert response.status_code == 400
    text = response.text
    assert message in text
    assert 'data-testid="day-error"' in text and "is-invalid" in text
    assert 'data-testid="summary-row"' not in text
    assert f'value="{day}"' in text  # what was typed stays in the field


def test_the_closed_days_accept_today_in_the_tenants_zone(world, en):
    today = timezone.localdate(timezone.now(), SH)
    response = en(world.a.manager).get(SUMMARIES, {"day": today.isoformat()})
    assert response.status_code == 200 and 'data-testid="day-error"' not in response.text


def test_reps_may_not_read_the_closed_days(world, login):
    assert login(world.a.rep).get(SUMMARIES).status_code == 403


def test_the_closed_days_take_a_constant_number_of_queries(world, login):
    t = world.a.tenant
    client = login(world.a.manager)
    client.get(SUMMARIES)
    with CaptureQueriesContext(connection) as few:
        client.get(SUMMARIES)
    for i in range(10):
        member = make_rep(t, f"rep-{i}")
        with tenant_context(t):
            board.day_close(member)
    with CaptureQueriesContext(connection) as many:
        assert client.get(SUMMARIES).text.count('data-testid="summary-row"') == 11
    assert len(many) == len(few)


# -- the weights in the admin ------------------------------------------------------------------


def test_the_admin_edits_the_tenants_weights(world, login):
    client = login(world.a.admin)
    response = client.get(reverse("admin:leads_boardsettings_changelist"))
    with tenant_context(world.a.tenant):
        settings = BoardSettings.objects.get()
    change = reverse("admin:leads_boardsettings_change", args=[settings.pk])
    assert response.status_code == 302 and response.url == change
    form = {
        "level_a": "5",
        "level_b": "2",
        "level_c": "1",
        "urgency_verify": "3",
        "urgency_overdue": "2.5",
        "urgency_due": "1.5",
        "urgency_revisit": "2",
        "overdue_per_hour": "0.2",
    }
    assert client.post(change, form).status_code == 302
    with tenant_context(world.a.tenant):
        settings.refresh_from_db()
        assert settings.level_a == 5 and settings.overdue_per_hour == 0.2
        assert board.board_settings().level_a == 5
    # Managers tune it too; reps do not.
    assert login(world.a.manager).get(change).status_code == 200
    assert login(world.a.rep).get(change).status_code == 403
