"""The weekly diagnosis (crm.process): written from Friday 17:00 in each tenant's time zone,
once per rep and ISO week; its top three actions; delivered in-app and on the rep's
chosen channel; its pages, with another tenant's and another rep's id answering 404."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crm import process
from crm.metrics import get_rate
from crm.models import (
    Delivery,
    Notification,
    NotificationPreference,
    Role,
    Tenant,
    WeeklyDiagnosis,
)
from crm.tenancy import tenant_context
from tests.factories import MembershipFactory
from tests.leads.test_process_metrics import build

pytestmark = pytest.mark.django_db

# Friday 13 March 2026: 17:00 in Shanghai is 09:00 UTC; in New York (daylight time since
# 8 March) 21:00 UTC.
WEEK = date(2026, 3, 9)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def run(side, now) -> list:
    with tenant_context(side.tenant):
        return process.generate(side.tenant, now=now)


def new_york(world):
    Tenant.objects.filter(pk=world.b.tenant.pk).update(timezone="America/New_York")
    world.b.tenant.refresh_from_db()


def test_written_from_friday_1700_in_each_tenants_time_zone(world):
    new_york(world)
    assert run(world.a, utc(12, 15)) == []  # Thursday 23:00 in Shanghai
    assert run(world.a, utc(13, 8, 59)) == []  # Friday 16:59 in Shanghai
    assert run(world.b, utc(13, 9)) == []  # Friday 05:00 in New York
    written = run(world.a, utc(13, 9))  # Friday 17:00 in Shanghai
    assert [d.membership for d in written] == [world.a.rep]
    assert (written[0].week, written[0].start, written[0].end) == (
        WEEK,
        date(2026, 3, 7),
        date(2026, 3, 13),
    )
    assert run(world.b, utc(13, 20, 59)) == []  # 16:59 in New York
    later = run(world.b, utc(13, 21))  # 17:00 in New York
    assert [d.membership for d in later] == [world.b.rep] and later[0].week == WEEK
    # Monday 00:30 in Shanghai is a new week, not due before its Friday.
    assert run(world.a, utc(15, 16, 30)) == []


def test_once_per_rep_and_week_and_a_new_rep_gets_theirs_at_the_next_run(world):
    first = run(world.a, utc(13, 9))
    assert len(first) == 1
    assert run(world.a, utc(13, 9, 15)) == []  # the next round: nothing to do
    assert run(world.a, utc(14, 3)) == []  # Saturday: still written once
    newcomer = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    again = run(world.a, utc(14, 3, 15))
    assert [d.membership for d in again] == [newcomer]
    with tenant_context(world.a.tenant):
        assert WeeklyDiagnosis.objects.filter(week=WEEK).count() == 2
        assert Notification.objects.filter(event=process.EVENT).count() == 2
    # The task (real time) is idempotent too.
    assert process.weekly_diagnosis(world.b.tenant.pk) in (0, 1)
    assert process.weekly_diagnosis(world.b.tenant.pk) == 0


def test_the_rep_is_notified_in_app_and_on_their_chosen_channel(world):
    rep = world.a.rep
    with tenant_context(world.a.tenant):
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=rep, event=process.EVENT, channels=["in_app", "email"]
        )
    [diagnosis] = run(world.a, utc(13, 9))
    with tenant_context(world.a.tenant):
        [notification] = Notification.objects.filter(event=process.EVENT)
        assert notification.recipient == rep
        assert notification.link == f"/reports/process/diagnosis/{diagnosis.public_id}/"
        assert "2026-W11" in notification.title
        delivery = Delivery.objects.get(notification=notification)
        assert delivery.to == rep.user.email


def figures(rep: int, mine: dict, team: dict) -> process.Figures:
    def values(shares: dict) -> dict:
        found = {}
        for key, (num, den) in shares.items():
            rate = get_rate(key)
            found[rate.numerator], found[rate.denominator] = num, den
        return found

    return process.Figures(date(2026, 3, 7), date(2026, 3, 13), values(team), {rep: values(mine)})


def test_the_top_three_are_the_rates_furthest_below_target_or_team():
    # Targets: follow-up 90 %, steps 85 %, key people 70 %, objections 80 %.
    mine = {
        "leads.process_follow_up_72h": (5, 10),  # 50 %: 40 points below target
        "leads.process_action_completion": (8, 10),  # 80 %: 5 below target, 10 below team
        "opportunities.process_key_person_coverage": (1, 4),  # 25 %: 45 below target
        "opportunities.process_objection_closure": (4, 5),  # 80 %: on target, 12 below team
    }
    team = {
        "leads.process_follow_up_72h": (12, 20),
        "leads.process_action_completion": (18, 20),
        "opportunities.process_key_person_coverage": (5, 10),
        "opportunities.process_objection_closure": (23, 25),
    }
    data = process.diagnosis_data(figures(7, mine, team), 7, None)
    assert [(a["key"], a["below"]) for a in data["actions"]] == [
        ("opportunities.process_key_person_coverage", "target"),
        ("leads.process_follow_up_72h", "target"),
        ("opportunities.process_objection_closure", "team"),
    ]
    assert [a["gap"] for a in data["actions"]] == pytest.approx([0.45, 0.4, 0.12])
    rates = {r["key"]: r for r in data["rates"]}
    assert rates["leads.process_follow_up_72h"]["share"] == 0.5
    assert rates["leads.process_follow_up_72h"]["team_share"] == 0.6
    # A rate at or above both, or without rows, is never an action.
    good = {key: (9, 10) for key in mine}
    good["opportunities.process_objection_closure"] = (0, 0)
    good["leads.process_action_completion"] = (87, 100)  # above its target, below the team
    data = process.diagnosis_data(figures(7, good, team), 7, None)
    assert data["actions"] == [
        {"key": "leads.process_action_completion", "gap": pytest.approx(0.03), "below": "team"}
    ]


def test_the_diagnosis_page_shows_the_actions_linked_to_the_rows_to_act_on(world, login):
    build(world)
    with tenant_context(world.a.tenant):
        written = process.generate(world.a.tenant, now=utc(6, 9))  # Friday 6 March, 17:00
    [diagnosis] = [d for d in written if d.membership == world.a.rep]
    assert (diagnosis.start, diagnosis.end) == (date(2026, 2, 28), date(2026, 3, 6))
    # 28 February … 6 March, rep1: 1 of 5 leads followed up within 72 h (20 %, 70 points
    # under the target), 2 of 4 steps on time (50 %, 35 under); no opportunity.
    assert diagnosis.data["actions"] == [
        {"key": "leads.process_follow_up_72h", "gap": pytest.approx(0.7), "below": "target"},
        {"key": "leads.process_action_completion", "gap": pytest.approx(0.35), "below": "target"},
    ]
    keys = [a["key"] for a in diagnosis.data["actions"]]
    client = login(world.a.rep)
    response = client.get(f"/reports/process/diagnosis/{diagnosis.public_id}/")
    assert response.status_code == 200
    actions = response.context["actions"]
    assert [a.key for a in actions] == keys
    rate = get_rate(keys[0])
    assert actions[0].url.startswith(f"/reports/metrics/{rate.act_on}/")
    assert f"rep={world.a.rep.pk}" in actions[0].url
    assert "start=2026-02-28" in actions[0].url and "end=2026-03-06" in actions[0].url
    assert str(rate.advice) in response.content.decode()


def test_who_opens_which_diagnosis(world, login):
    rep2 = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    mine, theirs = run(world.a, utc(13, 9))
    assert {mine.membership, theirs.membership} == {world.a.rep, rep2}
    if mine.membership != world.a.rep:
        mine, theirs = theirs, mine
    [other_tenant] = run(world.b, utc(13, 9))
    page = "/reports/process/diagnosis/{}/".format
    rep = login(world.a.rep)
    assert rep.get(page(mine.public_id)).status_code == 200
    assert rep.get(page(theirs.public_id)).status_code == 404  # another rep's
    assert rep.get(page(other_tenant.public_id)).status_code == 404  # another tenant's
    listed = rep.get("/reports/process/diagnosis/")
    assert [d.pk for d, _labels in listed.context["rows"]] == [mine.pk]
    manager = login(world.a.manager)
    assert manager.get(page(theirs.public_id)).status_code == 200
    assert manager.get(page(other_tenant.public_id)).status_code == 404
    team = manager.get("/reports/process/diagnosis/", {"week": "2026-03-11"})
    assert {d.pk for d, _labels in team.context["rows"]} == {mine.pk, theirs.pk}
    assert manager.get("/reports/process/diagnosis/", {"week": "last"}).status_code == 400
    service = login(MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE))
    assert service.get(page(mine.public_id)).status_code == 403
    assert service.get("/reports/process/diagnosis/").status_code == 403


def test_the_list_reads_a_bounded_number_of_queries(world, login, django_assert_max_num_queries):
    for i in range(8):
        MembershipFactory(tenant=world.a.tenant, role=Role.REP, user__username=f"alpha-r{i}")
    run(world.a, utc(13, 9))
    run(world.a, utc(20, 9))
    client = login(world.a.manager)
    with django_assert_max_num_queries(12):
        response = client.get("/reports/process/diagnosis/")
    assert response.status_code == 200
    assert len(response.context["rows"]) == 18  # 9 reps, 2 weeks
