"""The lead activity index (leads.activity.compute, docs/activity.md): each component and
the score recomputed here from hand-built rows, each component at its boundary (updated
6 vs 8 days before, 2 vs 3 follow-ups, 1 vs 2 roles), which leads are open, the reps'
day, idempotence, the nightly schedule and the tenant fence.

The day scored is 2026-03-10 of tenant a (Asia/Shanghai): values as of 00:00 that day."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from crm.tenancy import tenant_context
from customers.models import DecisionRole, InteractionKind
from leads.activity import compute
from leads.models import ActivityRun, LeadActivity, LeadEventKind, LeadStatus, RepActivity
from tests.leads import activity_helpers as h
from tests.leads.factories import make_channel, make_rep
from tests.opportunities.test_forecast import opportunity

pytestmark = pytest.mark.django_db

DAY = h.DAY


def expected(fresh: bool, follow_ups: int, roles: int) -> dict:
    """The points, recomputed from the definitions (docs/activity.md)."""
    tenth = Decimal("0.1")
    parts = {
        "freshness": Decimal(40 if fresh else 0),
        "density": Decimal(35) * min(follow_ups, 3) / 3,
        "coverage": Decimal(25) * min(roles, 2) / 2,
    }
    score = sum(parts.values())
    result = {k: v.quantize(tenth, ROUND_HALF_UP) for k, v in parts.items()}
    result["score"] = score.quantize(tenth, ROUND_HALF_UP)
    return result


def run(tenant, day=DAY):
    with tenant_context(tenant):
        return compute.compute(tenant, day=day)


def rows(tenant, day=DAY) -> dict:
    with tenant_context(tenant):
        return {r.lead_id: r for r in LeadActivity.objects.filter(day=day)}


def points(row) -> dict:
    return {k: getattr(row, k) for k in ("freshness", "density", "coverage", "score")}


def test_freshness_boundary_6_vs_8_days(world):
    t, rep = world.a.tenant, world.a.rep
    six = h.lead(t, rep)
    h.event(six, days_before=6)
    eight = h.lead(t, rep)
    h.event(eight, days_before=8)
    # An SLA alert is not an update; an entry after the day's start is not seen yet.
    h.event(eight, days_before=1, kind=LeadEventKind.SLA)
    h.event(eight, days_before=-0.01)
    seven = h.lead(t, rep)
    h.event(seven, days_before=7)  # exactly 7 days: still fresh
    created = h.lead(t, rep, days_old=3)  # nothing but its creation, 3 days ago
    touched = h.lead(t, rep, last_touch_at=h.start_of(t) - timedelta(days=2))

    run(t)
    found = rows(t)
    assert points(found[six.pk]) == expected(True, 0, 0)
    assert found[six.pk].idle_days == 6
    assert points(found[eight.pk]) == expected(False, 0, 0)
    assert found[eight.pk].idle_days == 8
    assert found[seven.pk].freshness == 40 and found[seven.pk].idle_days == 7
    assert found[created.pk].freshness == 40 and found[created.pk].idle_days == 3
    assert found[touched.pk].freshness == 40 and found[touched.pk].idle_days == 2


def test_density_boundary_2_vs_3_follow_ups(world):
    t, rep, manager = world.a.tenant, world.a.rep, world.a.manager
    two, three, old = h.lead(t, rep), h.lead(t, rep), h.lead(t, rep)
    for days in (1, 29):
        h.follow_up(rep, lead=two, days_before=days)
    # A verification call is not a follow-up; a follow-up 31 days back is out of the window.
    h.follow_up(rep, lead=two, days_before=2, kind=InteractionKind.VERIFICATION)
    h.follow_up(rep, lead=two, days_before=31)
    for days in (3, 10, 20):
        # Anyone's follow-up on the lead counts.
        h.follow_up(manager if days == 20 else rep, lead=three, days_before=days)
    h.follow_up(rep, lead=old, days_before=30.5)
    h.follow_up(rep, lead=old, days_before=-0.1)  # after the day's start

    run(t)
    found = rows(t)
    # A follow-up on the lead is also its latest update.
    assert points(found[two.pk]) == expected(True, 2, 0)
    assert found[two.pk].density == Decimal("23.3")
    assert points(found[three.pk]) == expected(True, 3, 0)
    assert found[three.pk].density == 35
    assert points(found[old.pk]) == expected(False, 0, 0)
    assert found[old.pk].idle_days == 30


def test_coverage_boundary_1_vs_2_roles(world):
    t, rep, manager = world.a.tenant, world.a.rep, world.a.manager
    c1 = h.customer(t, owner=rep)
    buyer = h.contact(c1, DecisionRole.PURCHASING)
    buyer_too = h.contact(c1, DecisionRole.PURCHASING)
    tech = h.contact(c1, DecisionRole.TECHNICAL)
    nobody = h.contact(c1, "")
    one = h.lead(t, rep, customer=c1)
    # Two contacts of the same role, a contact without one: one role.
    h.follow_up(rep, customer=c1, contact=buyer, days_before=40)
    h.follow_up(rep, customer=c1, contact=buyer_too, days_before=50)
    h.follow_up(rep, customer=c1, contact=nobody, days_before=45)
    # The technical contact was reached by the manager, not by the lead's owner.
    h.follow_up(manager, customer=c1, contact=tech, days_before=40)

    c2 = h.customer(t, owner=rep)
    two = h.lead(t, rep, customer=c2)
    h.follow_up(rep, customer=c2, contact=h.contact(c2, DecisionRole.USER), days_before=90)
    # A role recorded as reached on a follow-up counts (the same one twice: once).
    h.follow_up(rep, customer=c2, roles=[DecisionRole.FINANCE, DecisionRole.USER], days_before=60)

    # Without a customer, only the lead's own contact's role can count.
    c3 = h.customer(t, owner=rep)
    bare = h.lead(t, rep, contact=h.contact(c3, DecisionRole.DECISION_MAKER))
    no_role = h.lead(t, rep)
    # A contact of another customer does not count for this lead.
    c4 = h.customer(t, owner=rep)
    other = h.lead(t, rep, customer=c4)
    h.follow_up(rep, customer=c4, contact=h.contact(c1, DecisionRole.TECHNICAL), days_before=5)

    run(t)
    found = rows(t)
    assert (found[one.pk].roles, found[one.pk].coverage) == (1, Decimal("12.5"))
    assert (found[two.pk].roles, found[two.pk].coverage) == (2, 25)
    assert (found[bare.pk].roles, found[bare.pk].coverage) == (1, Decimal("12.5"))
    assert (found[no_role.pk].roles, found[no_role.pk].coverage) == (0, 0)
    assert found[other.pk].roles == 0
    # A follow-up on the customer is not an update of the lead.
    assert found[other.pk].freshness == 0
    assert points(found[two.pk]) == expected(False, 0, 2)


def test_score_is_the_sum_and_the_reps_day_averages_it(world):
    t, rep = world.a.tenant, world.a.rep
    second = make_rep(t, "second-rep")
    cust = h.customer(t, owner=rep)
    # 40 + 23.3 + 12.5 = 75.8 (75.83…): just above the line.
    above = h.lead(t, rep, customer=cust)
    h.follow_up(rep, lead=above, days_before=1, contact=h.contact(cust, DecisionRole.PURCHASING))
    h.follow_up(rep, lead=above, days_before=2)
    # 40 + 11.7 + 0 = 51.7 (51.67).
    below = h.lead(t, rep)
    h.follow_up(rep, lead=below, days_before=3)
    # 0: stale, nothing else.
    dead = h.lead(t, rep)
    # 100.
    full_customer = h.customer(t, owner=second)
    full = h.lead(t, second, customer=full_customer)
    for days in (1, 2, 3):
        h.follow_up(
            second, lead=full, days_before=days, roles=[DecisionRole.TECHNICAL, DecisionRole.USER]
        )

    result = run(t)
    found = rows(t)
    want = {
        above.pk: expected(True, 2, 1),
        below.pk: expected(True, 1, 0),
        dead.pk: expected(False, 0, 0),
        full.pk: expected(True, 3, 2),
    }
    assert {pk: points(found[pk]) for pk in want} == want
    assert want[above.pk]["score"] == Decimal("75.8")
    assert want[full.pk]["score"] == 100
    assert {r.owner_id for r in found.values()} == {rep.pk, second.pk}

    with tenant_context(t):
        reps = {r.owner_id: r for r in RepActivity.objects.filter(day=DAY)}
    mine = [want[pk]["score"] for pk in (above.pk, below.pk, dead.pk)]
    average = (sum(mine) / 3).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert (reps[rep.pk].leads, reps[rep.pk].below, reps[rep.pk].average) == (3, 2, average)
    assert (reps[second.pk].leads, reps[second.pk].below, reps[second.pk].average) == (1, 0, 100)
    assert (result.leads, result.below, result.reps) == (4, 2, 2)


def test_only_open_leads_are_scored(world):
    t, rep = world.a.tenant, world.a.rep
    channel = make_channel(t)
    cust = h.customer(t, owner=rep)
    assigned = h.lead(t, rep, channel=channel)
    valid = h.lead(t, rep, channel=channel, status=LeadStatus.VALID, customer=cust)
    invalid = h.lead(t, rep, channel=channel, status=LeadStatus.INVALID)
    pooled = h.lead(t, None, channel=channel, status=LeadStatus.NEW)
    future = h.lead(t, rep, channel=channel, days_old=-0.5)  # created after the day began
    won_from = h.lead(t, rep, channel=channel, status=LeadStatus.VALID, customer=cust)
    lost_from = h.lead(t, rep, channel=channel, status=LeadStatus.VALID, customer=cust)
    open_from = h.lead(t, rep, channel=channel, status=LeadStatus.VALID, customer=cust)
    now = datetime.now(t.tzinfo)
    opportunity(world.a, rep, origin_lead=won_from, status="won", won_at=now, probability=100)
    opportunity(world.a, rep, origin_lead=lost_from, status="lost", lost_at=now, probability=0)
    opportunity(world.a, rep, origin_lead=open_from)

    run(t)
    assert set(rows(t)) == {assigned.pk, valid.pk, open_from.pk}
    assert {invalid.pk, pooled.pk, future.pk, won_from.pk, lost_from.pk}.isdisjoint(rows(t))


def test_a_second_run_writes_the_same_rows(world):
    t, rep = world.a.tenant, world.a.rep
    first = h.lead(t, rep)
    h.follow_up(rep, lead=first, days_before=2)
    closed = h.lead(t, rep)
    run(t)
    before = {
        pk: (r.owner_id, r.idle_days, r.follow_ups, r.roles, points(r)) for pk, r in rows(t).items()
    }

    # The lead verified invalid since the first run leaves the day's rows.
    with tenant_context(t):
        type(closed).objects.filter(pk=closed.pk).update(status=LeadStatus.INVALID)
    run(t)
    after = {
        pk: (r.owner_id, r.idle_days, r.follow_ups, r.roles, points(r)) for pk, r in rows(t).items()
    }
    assert after == {pk: v for pk, v in before.items() if pk != closed.pk}
    run(t)
    again = {
        pk: (r.owner_id, r.idle_days, r.follow_ups, r.roles, points(r)) for pk, r in rows(t).items()
    }
    assert again == after
    with tenant_context(t):
        assert ActivityRun.objects.filter(day=DAY).count() == 1
        assert RepActivity.objects.filter(day=DAY).count() == 1
        assert RepActivity.objects.get(day=DAY).leads == 1


def test_old_rows_are_pruned(world):
    t, rep = world.a.tenant, world.a.rep
    h.lead(t, rep)
    old_day = DAY - timedelta(days=compute.KEEP_DAYS + 1)
    kept_day = DAY - timedelta(days=compute.KEEP_DAYS)
    run(t, old_day)
    run(t, kept_day)
    result = run(t)
    assert result.pruned == 1
    with tenant_context(t):
        days = set(LeadActivity.objects.values_list("day", flat=True))
        assert days == {kept_day, DAY}
        # The reps' days are kept longer.
        assert RepActivity.objects.filter(day=old_day).exists()


def test_nightly_runs_once_a_day_after_midnight_local_time(world):
    t, rep = world.a.tenant, world.a.rep
    h.lead(t, rep)
    local = t.tzinfo
    with tenant_context(t):
        # 00:40 in Shanghai (16:40 UTC the day before): too early.
        assert compute.nightly(t, now=datetime(2026, 3, 10, 0, 40, tzinfo=local)) is None
        done = compute.nightly(t, now=datetime(2026, 3, 10, 1, 5, tzinfo=local))
        assert done["day"] == "2026-03-10" and done["leads"] == 1
        assert compute.nightly(t, now=datetime(2026, 3, 10, 9, 0, tzinfo=local)) is None
        # The next night.
        assert compute.nightly(t, now=datetime(2026, 3, 11, 1, 30, tzinfo=local))["leads"] == 1
        assert list(ActivityRun.objects.order_by("day").values_list("day", flat=True)) == [
            DAY,
            DAY + timedelta(days=1),
        ]


def test_a_run_reads_and_writes_its_own_tenant_only(world):
    a, b = world.a, world.b
    cust_b = h.customer(b.tenant, owner=b.rep)
    theirs = h.lead(b.tenant, b.rep, customer=cust_b)
    for days in (1, 2, 3):
        h.follow_up(b.rep, lead=theirs, days_before=days)
    mine = h.lead(a.tenant, a.rep)
    run(a.tenant)
    assert set(rows(a.tenant)) == {mine.pk}
    assert rows(b.tenant) == {}
    run(b.tenant)
    assert points(rows(b.tenant)[theirs.pk]) == expected(True, 3, 0)
