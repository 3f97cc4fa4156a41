"""Closing the day (F19) on real rows: the day's summary across a day boundary in
Asia/Shanghai, closing it from the board, and the managers' page of closed days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.tenancy import tenant_context
from leads.board import ranking as board
from leads.models import DailySummary, Verification
from leads.verification import lead_verify
from tests.leads.board_helpers import (
    BOARD,
    CLOSE,
    HTMX,
    SH,
    SUMMARIES,
    action,
    channel_fixture,  # noqa: F401 (the channel fixture)
    customer,
    follow_up,
    sh,
)
from tests.leads.factories import make_assigned_lead, make_rep

pytestmark = pytest.mark.django_db


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
