"""The water levels (crm/levels.py, crm/views_levels.py): the anomaly rule, the nightly
record (idempotent, per tenant, each anomaly told once to its owner with the rows behind
it) and the page (roles, tenant isolation, links to the rows, a constant query count).

The levels are the registered ones (leads: response time, process data; opportunities:
decision chain), fed with hand-built rows; the history a day is judged against is written
as earlier nights would have written it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import levels, metrics
from crm.levels import MIN_HISTORY, WINDOW, judge
from crm.models import LevelDay, Notification, Role
from crm.tasks import levels_record
from crm.tenancy import tenant_context
from customers.models import Interaction, PresetKind
from customers.services import presets
from tests.crm.test_security import _assert_page_obeys_its_policy
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead, make_channel, make_rep

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 2)
RESPONSE = "leads.response"
PROCESS = "leads.process_data"
CHAIN = "opportunities.decision_chain"
URL = "/reports/levels/"


def at(tenant, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=tenant.tzinfo)


def history(tenant, key, owner, values, before=DAY):
    """The rows earlier nights wrote: `values` on the days just before `before`."""
    with tenant_context(tenant):
        LevelDay.objects.bulk_create(
            LevelDay(
                tenant=tenant,
                key=key,
                owner=owner,
                day=before - timedelta(days=len(values) - n),
                value=value,
                sample=3,
            )
            for n, value in enumerate(values)
        )


def responses(tenant, owner, minutes, day=DAY):
    """Leads assigned to `owner` on `day`, each touched after `minutes`."""
    channel = make_channel(tenant, name=f"渠道{owner.pk}{day}")
    for n, wait in enumerate(minutes):
        assigned = at(tenant, day, 9 + n)
        make_assigned_lead(
            tenant,
            owner,
            assigned,
            channel=channel,
            first_touch_at=assigned + timedelta(minutes=wait),
        )


def follow_ups(tenant, owner, structured: list[bool], day=DAY):
    lead = make_assigned_lead(tenant, owner, at(tenant, day, 8), first_touch_at=at(tenant, day, 8))
    with tenant_context(tenant):
        action = presets(PresetKind.ACTION).first()
        for n, complete in enumerate(structured):
            Interaction.objects.create(
                tenant=tenant,
                lead=lead,
                by=owner,
                at=at(tenant, day, 9 + n),
                channel="phone",
                talk_tags=["价格敏感"] if complete else [],
                roles=["technical"] if complete else [],
                next_action=action,
                next_action_due=day + timedelta(days=2),
            )


def rows_of(tenant, **filters):
    with tenant_context(tenant):
        return list(LevelDay.objects.filter(**filters).order_by("key", "day", "owner_id"))


def told(tenant, **filters):
    with tenant_context(tenant):
        return list(
            Notification.objects.filter(event=levels.ANOMALY_EVENT, **filters).order_by("pk")
        )


# -- the anomaly rule ---------------------------------------------------------------------------

USUAL = [90.0] * 7 + [100.0] * 7 + [110.0] * 7  # median 100, MAD 10
# The band: 100 ± 3 × 1.4826 × 10 = 55.52 … 144.48.


def test_a_value_inside_the_band_is_not_an_anomaly():
    verdict = judge(144.0, USUAL, floor=5.0)
    assert (verdict.anomaly, verdict.median, verdict.mad) == (False, 100.0, 10.0)
    assert verdict.band(5.0) == pytest.approx((55.522, 144.478))
    assert not judge(56.0, USUAL, floor=5.0).anomaly
    assert not judge(100.0, USUAL, floor=5.0).anomaly


def test_a_value_outside_the_band_either_way_is_an_anomaly():
    assert judge(145.0, USUAL, floor=5.0).anomaly
    assert judge(55.0, USUAL, floor=5.0).anomaly


def test_nothing_is_judged_with_fewer_than_14_values():
    few = [100.0] * (MIN_HISTORY - 1) + [None] * 10  # days without a value do not count
    verdict = judge(1000.0, few, floor=5.0)
    assert (verdict.anomaly, verdict.median, verdict.mad) == (False, None, None)
    assert judge(1000.0, [100.0] * MIN_HISTORY, floor=5.0).anomaly
    assert not judge(None, USUAL, floor=5.0).anomaly  # no value, nothing to judge


def test_with_mad_zero_the_floor_is_the_band():
    flat = [100.0] * 20 + [90.0, 110.0]  # more than half alike: MAD 0
    verdict = judge(104.0, flat, floor=5.0)
    assert (verdict.median, verdict.mad, verdict.anomaly) == (100.0, 0.0, False)
    assert judge(106.0, flat, floor=5.0).anomaly
    assert judge(94.0, flat, floor=5.0).anomaly
    # A band wider than the floor is kept: 3 scaled MADs.
    assert not judge(140.0, USUAL, floor=0.01).anomaly


# -- recording a day ---------------------------------------------------------------------------


def test_a_day_is_recorded_per_rep_and_team_and_a_reps_anomaly_told_to_the_rep(world):
    t, rep = world.a.tenant, world.a.rep
    history(t, RESPONSE, rep, [30.0, 40.0, 50.0] * 7)  # 21 days, band 10 … 70 minutes
    responses(t, rep, [300, 310])
    with tenant_context(t):
        recorded = levels.record_day(t, DAY)
    assert (recorded.anomalies, recorded.told) == (1, 1)

    day_rows = {(r.key, r.owner_id): r for r in rows_of(t, day=DAY)}
    mine = day_rows[(RESPONSE, rep.pk)]
    assert (mine.value, mine.sample, mine.anomaly) == (305.0, 2, True)
    assert (mine.median, mine.mad) == (40.0, 10.0)
    assert mine.notified_at is not None
    # The team's row of every level, a value or not; the team's history is too short.
    assert day_rows[(RESPONSE, None)].value == 305.0 and not day_rows[(RESPONSE, None)].anomaly
    assert day_rows[(PROCESS, None)].value is None and day_rows[(PROCESS, None)].sample == 0
    assert day_rows[(CHAIN, None)].value is None

    [note] = told(t)
    assert note.recipient_id == rep.pk
    assert note.link == metrics.drill_url("leads.response_wait", DAY, DAY, {"rep": rep.pk})
    assert note.params["value"] and note.params["day"] == DAY.isoformat()
    assert told(world.b.tenant) == []


def test_recording_a_day_again_replaces_its_rows_and_tells_nobody_twice(world):
    t, rep = world.a.tenant, world.a.rep
    rep2 = make_rep(t, "alpha-rep2")
    history(t, RESPONSE, rep, [30.0, 40.0, 50.0] * 7)
    responses(t, rep, [300, 310])
    follow_ups(t, rep2, [True, False])
    with tenant_context(t):
        levels.record_day(t, DAY)
        first = [(r.key, r.owner_id, r.value, r.anomaly) for r in LevelDay.objects.all()]
        again = levels.record_day(t, DAY)
        assert [(r.key, r.owner_id, r.value, r.anomaly) for r in LevelDay.objects.all()] == first
    assert (again.anomalies, again.told) == (1, 0)
    assert len(told(t)) == 1

    # The day's rows change (a follow-up gets its data; rep2's lead's follow-ups are gone):
    # recording it again follows, and rep2's process row goes.
    with tenant_context(t):
        Interaction.objects.filter(by=rep2).delete()
        levels.record_day(t, DAY)
    assert rows_of(t, day=DAY, key=PROCESS, owner=rep2) == []
    assert len(told(t)) == 1


def test_the_teams_anomaly_is_told_to_the_managers(world):
    t = world.a.tenant
    second = MembershipFactory(tenant=t, role=Role.MANAGER, user__username="alpha-mgr2")
    history(t, PROCESS, None, [0.9, 0.92, 0.88] * 6)  # the floor, 0.8 … 1.0
    follow_ups(t, world.a.rep, [True, False, False, False, False])  # 20 % of 5
    with tenant_context(t):
        levels.record_day(t, DAY)
    [team] = rows_of(t, day=DAY, key=PROCESS, owner=None)
    assert team.anomaly and team.value == pytest.approx(0.2)
    notes = told(t)
    assert {n.recipient_id for n in notes} == {world.a.manager.pk, second.pk}
    assert all(n.link == metrics.drill_url("leads.followups_logged", DAY, DAY) for n in notes)
    # The rep's own process level has no history: not judged, nobody told about it.
    [mine] = rows_of(t, day=DAY, key=PROCESS, owner=world.a.rep)
    assert not mine.anomaly


def test_a_value_over_too_few_rows_is_recorded_not_judged(world):
    t, rep = world.a.tenant, world.a.rep
    history(t, RESPONSE, rep, [30.0, 40.0, 50.0] * 7)
    responses(t, rep, [300])  # one lead: below the level's minimum of 2
    with tenant_context(t):
        recorded = levels.record_day(t, DAY)
    [mine] = rows_of(t, day=DAY, key=RESPONSE, owner=rep)
    assert (mine.value, mine.sample, mine.anomaly) == (300.0, 1, False)
    assert mine.median == 40.0  # the band is kept for the page
    assert (recorded.anomalies, recorded.told) == (0, 0)


def test_the_nightly_run_waits_for_one_oclock_and_records_the_missing_days_once(world):
    t = world.a.tenant
    responses(t, world.a.rep, [20])
    responses(world.b.tenant, world.b.rep, [20])
    before = at(t, DAY + timedelta(days=1), 0, 30)
    after = at(t, DAY + timedelta(days=1), 1, 30)
    with tenant_context(t):
        assert levels.nightly(t, now=before) is None
        done = levels.nightly(t, now=after)
        assert [r.day for r in done] == [DAY - timedelta(days=n) for n in range(6, -1, -1)]
        assert levels.nightly(t, now=after + timedelta(hours=1)) == []
    team = rows_of(t, key=RESPONSE, owner=None, value__isnull=False)
    assert [(r.day, r.value) for r in team] == [(DAY, 20.0)]
    # Each tenant's run writes and reads its own rows only.
    assert rows_of(world.b.tenant) == []


def test_the_task_runs_one_tenant_inside_its_context(world):
    responses(world.b.tenant, world.b.rep, [45])
    result = levels_record(world.b.tenant.pk)
    assert rows_of(world.a.tenant) == []
    if result is not None:  # from 01:00 in the tenant's time zone: the last week
        today = timezone.localdate(timezone=world.b.tenant.tzinfo)
        assert {r.day for r in rows_of(world.b.tenant, owner=None)} == {
            today - timedelta(days=n) for n in range(1, levels.CATCH_UP + 1)
        }
        assert [entry["day"] for entry in result] == sorted(entry["day"] for entry in result)


# -- the page ---------------------------------------------------------------------------------


def recorded_window(world):
    """28 recorded days for the team and the rep, an anomaly on the last one."""
    t, rep = world.a.tenant, world.a.rep
    today = timezone.localdate(timezone=t.tzinfo)
    history(t, RESPONSE, None, [40.0] * WINDOW, before=today)
    history(t, RESPONSE, rep, [35.0] * (WINDOW - 1) + [400.0], before=today)
    with tenant_context(t):
        LevelDay.objects.filter(owner=rep, day=today - timedelta(days=1)).update(anomaly=True)
    return today


def test_a_manager_sees_the_team_and_every_rep_with_links_to_their_rows(world, login):
    t, rep = world.a.tenant, world.a.rep
    rep2 = make_rep(t, "alpha-rep2")
    today = recorded_window(world)
    responses(t, rep2, [25], day=today)
    response = login(world.a.manager).get(URL)
    page = response.content.decode()
    _assert_page_obeys_its_policy(response)
    assert 'src="/static/crm/levels.js"' in page
    for key in (RESPONSE, PROCESS, CHAIN):
        assert f'data-testid="level-{key}"' in page
    yesterday = today - timedelta(days=1)
    assert metrics.drill_url("leads.response_wait", yesterday, yesterday, {"rep": rep.pk}) in (
        page.replace("&amp;", "&")
    )
    assert metrics.drill_url("leads.response_wait", today, today, {"rep": rep2.pk}) in (
        page.replace("&amp;", "&")
    )
    assert f'data-row="{rep.pk}"' in page and f'data-row="{rep2.pk}"' in page
    assert f"?rep={rep2.public_id}" in page  # draw rep2 beside the team
    assert 'data-testid="anomaly"' in page
    charts = response.context["charts"]["levels"]
    response_chart = next(c for c in charts if c["key"] == RESPONSE)
    assert len(response_chart["days"]) == WINDOW
    assert response_chart["target"] == 120.0
    assert len(response_chart["series"]) == 1  # the team's line only
    # Today's team value is computed now: rep2's one lead, 25 minutes.
    block = next(b for b in response.context["blocks"] if b.level.key == RESPONSE)
    assert block.today.value == pytest.approx(25.0)
    assert block.today_meets is True


def test_a_rep_sees_their_own_line_beside_the_teams_and_nobody_elses(world, login):
    t, rep = world.a.tenant, world.a.rep
    rep2 = make_rep(t, "alpha-rep2")
    recorded_window(world)
    client = login(rep)
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-row="{rep.pk}"' in page and f'data-row="{rep2.pk}"' not in page
    chart = next(c for c in response.context["charts"]["levels"] if c["key"] == RESPONSE)
    team, mine = chart["series"]
    assert mine["points"][-1]["anomaly"] and mine["points"][-1]["value"] == 400.0
    assert not any(p["anomaly"] for p in team["points"])
    assert client.get(f"{URL}?rep={rep.public_id}").status_code == 200
    assert client.get(f"{URL}?rep={rep2.public_id}").status_code == 404


def test_a_manager_draws_one_rep_beside_the_team(world, login):
    recorded_window(world)
    response = login(world.a.manager).get(f"{URL}?rep={world.a.rep.public_id}")
    chart = next(c for c in response.context["charts"]["levels"] if c["key"] == RESPONSE)
    assert len(chart["series"]) == 2
    assert response.context["focus"] == world.a.rep


def test_another_tenants_rep_is_404_and_a_bad_one_400(world, login):
    client = login(world.a.manager)
    assert client.get(f"{URL}?rep={world.b.rep.public_id}").status_code == 404
    response = client.get(f"{URL}?rep=abc")
    assert response.status_code == 400
    assert response.content


def test_the_page_shows_no_other_tenants_levels(world, login):
    history(world.b.tenant, RESPONSE, None, [777.0] * WINDOW, before=timezone.localdate())
    response = login(world.a.manager).get(URL)
    chart = next(c for c in response.context["charts"]["levels"] if c["key"] == RESPONSE)
    assert all(p["value"] is None for s in chart["series"] for p in s["points"])


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.REP, 200),
        (Role.MANAGER, 200),
        (Role.MARKETING, 200),
        (Role.ADMIN, 200),
        (Role.SERVICE, 403),
    ],
)
def test_service_agents_are_refused(world, login, role, status):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    assert login(member).get(URL).status_code == status


def test_the_page_reads_a_constant_number_of_queries(world, login):
    t = world.a.tenant
    client = login(world.a.manager)
    recorded_window(world)
    client.get(URL)
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    today = timezone.localdate(timezone=t.tzinfo)
    for n in range(6):
        member = make_rep(t, f"alpha-more{n}")
        history(t, RESPONSE, member, [30.0 + n] * WINDOW, before=today)
        history(t, PROCESS, member, [0.8] * WINDOW, before=today)
        responses(t, member, [10, 20], day=today)
        follow_ups(t, member, [True, False], day=today)
    with CaptureQueriesContext(connection) as many:
        assert client.get(URL).status_code == 200
    assert len(many) == len(few)


def test_the_command_records_a_day_on_demand(world):
    from io import StringIO

    from django.core.management import CommandError, call_command

    responses(world.a.tenant, world.a.rep, [20])
    out = StringIO()
    call_command("record_levels", "--tenant", "alpha", "--day", DAY.isoformat(), stdout=out)
    assert f"alpha: {DAY} recorded, 0 anomalies, 0 told" in out.getvalue()
    [team] = rows_of(world.a.tenant, day=DAY, key=RESPONSE, owner=None)
    assert team.value == 20.0
    assert rows_of(world.b.tenant) == []
    with pytest.raises(CommandError):
        call_command("record_levels", "--day", "yesterday")
    with pytest.raises(CommandError):
        call_command("record_levels", "--tenant", "nobody")
