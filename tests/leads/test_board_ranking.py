"""The daily board's rank (F15) on real rows: the settings and the rank's arithmetic,
each kind of item, a follow-up due by the day in Asia/Shanghai, what is on the board and
what a verdict does to it, and the weights in the admin."""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from crm.tenancy import tenant_context
from customers.models import Interaction
from leads.board import ranking as board
from leads.models import BoardSettings, Lead, LeadStatus, Verification
from leads.verification import invalid_reasons, lead_verify
from tests.leads.board_helpers import (
    BOARD,
    HTMX,
    SH,
    action,
    channel_fixture,  # noqa: F401 (the channel fixture)
    customer,
    follow_up,
    sh,
)
from tests.leads.factories import make_assigned_lead, make_lead, make_rep

pytestmark = pytest.mark.django_db


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
