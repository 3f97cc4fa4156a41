"""The members' active days (leads.models.RepActiveDay, kept by the triggers of leads
migration 0021) that the self-test's daily active reps count: after inserts, updates and
deletes in each of the four sources, a new seat, a deleted seat and a new time zone, the
rows are exactly the days recomputed here in Python from the sources' rows; the figures
`selftest.rep_active_days` and `selftest.rep_working_days` equal that recomputation; and
tenant b's activity and rows stay out of tenant a's.

The day is TODAY (Monday 16 March 2026) of tenant a; the window 14 February – 15 March
(tests/crm/selftest_helpers.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from crm import metrics
from crm.audit import audit
from crm.models import AuditEvent, Membership, Role, Tenant
from crm.tenancy import tenant_context
from customers.models import Interaction
from leads.models import DailySummary, LeadEvent, LeadEventKind, RepActiveDay
from tests.crm.selftest_helpers import END, START, customer, interaction, local
from tests.factories import MembershipFactory, UserFactory
from tests.leads.factories import make_lead

pytestmark = pytest.mark.django_db


def expected(tenant: Tenant) -> set[tuple[int, date]]:
    """The (member, local day) pairs on which a member of `tenant` acted, recomputed from
    the four sources' rows in Python (no SQL date arithmetic)."""
    tz = tenant.tzinfo
    with tenant_context(tenant):
        seats = dict(Membership.objects.filter(tenant=tenant).values_list("user_id", "id"))
        members = set(seats.values())
        days = {
            (by, timezone.localdate(at, timezone=tz))
            for by, at in Interaction.objects.filter(tenant=tenant).values_list("by_id", "at")
            if by in members
        }
        for model in (LeadEvent, AuditEvent):
            for actor, at in model.objects.filter(tenant=tenant).values_list("actor_id", "at"):
                if actor in seats:
                    days.add((seats[actor], timezone.localdate(at, timezone=tz)))
        days |= set(DailySummary.objects.filter(tenant=tenant).values_list("membership_id", "day"))
    return days


def stored(tenant: Tenant) -> set[tuple[int, date]]:
    with tenant_context(tenant):
        rows = list(RepActiveDay.objects.values_list("tenant_id", "membership_id", "day"))
    assert {t for t, _m, _d in rows} <= {tenant.pk}
    assert len(rows) == len({(m, d) for _t, m, d in rows})
    return {(m, d) for _t, m, d in rows}


def touch(side, lead, at, actor=None):
    with tenant_context(side.tenant):
        return LeadEvent.objects.create(
            tenant=side.tenant,
            lead=lead,
            kind=LeadEventKind.TOUCH,
            actor=(actor or side.rep).user,
            at=at,
        )


def build(world):
    """Activity of tenant a's rep and manager from every source, and of tenant b's rep on
    the same days; returns what the tests move and delete."""
    a, b = world.a, world.b
    t = a.tenant
    lead = make_lead(t, owner=a.rep, created_at=local(t, 2026, 1, 5, 9))
    lead_b = make_lead(b.tenant, owner=b.rep, created_at=local(b.tenant, 2026, 1, 5, 9))
    cust = customer(a, "恒力液压")
    # 23:30 and 00:30 local: two local days, one UTC day (Asia/Shanghai is UTC+8).
    late = touch(a, lead, local(t, 2026, 3, 2, 23, 30))
    early = touch(a, lead, local(t, 2026, 3, 3, 0, 30))
    twice = [interaction(a, by=a.rep, customer=cust, at=local(t, 2026, 3, 4, h)) for h in (9, 16)]
    with tenant_context(t):
        DailySummary.objects.create(tenant=t, membership=a.rep, day=date(2026, 3, 5))
        event = audit(tenant=t, actor=a.manager.user, action="lead.reassigned", obj=lead)
        AuditEvent.objects.filter(pk=event.pk).update(at=local(t, 2026, 3, 6, 10))
    touch(b, lead_b, local(b.tenant, 2026, 3, 9, 10))
    interaction(b, by=b.rep, customer=customer(b, "乙方客户"), at=local(b.tenant, 2026, 3, 10, 9))
    return {"lead": lead, "late": late, "early": early, "twice": twice, "event": event}


def figures(tenant, start=START, end=END) -> dict:
    keys = ("selftest.rep_active_days", "selftest.rep_working_days")
    with tenant_context(tenant):
        return metrics.values_of(
            [metrics.get_metric(k) for k in keys], tenant=tenant, start=start, end=end
        )


def working_and_active(tenant, start=START, end=END) -> tuple[int, int]:
    """The two figures recomputed in Python: each active rep's Monday–Friday days of
    [start, end] from their start (the seat's day or the first activity, the earlier),
    and those with activity."""
    days = expected(tenant)
    tz = tenant.tzinfo
    working = active = 0
    with tenant_context(tenant):
        reps = Membership.objects.filter(
            tenant=tenant, role=Role.REP, is_active=True, user__is_active=True
        )
        for seat in reps:
            mine = {d for m, d in days if m == seat.pk}
            began = min([timezone.localdate(seat.created_at, timezone=tz), *mine])
            span = [
                start + timedelta(days=n)
                for n in range((end - start).days + 1)
                if start + timedelta(days=n) >= began and (start + timedelta(days=n)).weekday() < 5
            ]
            working += len(span)
            active += len(set(span) & mine)
    return working, active


def test_the_rows_are_the_days_recomputed_from_the_four_sources(world):
    build(world)
    a, t = world.a, world.a.tenant
    assert stored(t) == expected(t)
    assert (a.rep.pk, date(2026, 3, 2)) in stored(t)
    assert (a.rep.pk, date(2026, 3, 3)) in stored(t)
    assert (a.manager.pk, date(2026, 3, 6)) in stored(t)
    assert stored(world.b.tenant) == expected(world.b.tenant)
    working, active = working_and_active(t)
    found = figures(t)
    assert found["selftest.rep_working_days"] == working
    assert found["selftest.rep_active_days"] == active
    # The rep's 2, 3, 4 and 5 March: Monday to Thursday.
    assert active >= 4


def test_a_deleted_source_row_drops_the_day_only_when_nothing_else_was_done_on_it(world):
    built = build(world)
    a, t = world.a, world.a.tenant
    with tenant_context(t):
        Interaction.objects.filter(pk=built["twice"][0].pk).delete()
    assert (a.rep.pk, date(2026, 3, 4)) in stored(t)  # the other follow-up that day
    with tenant_context(t):
        Interaction.objects.filter(pk=built["twice"][1].pk).delete()
        LeadEvent.objects.filter(pk=built["late"].pk).delete()
        DailySummary.objects.filter(membership=a.rep).delete()
    assert stored(t) == expected(t)
    for day in (date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 5)):
        assert (a.rep.pk, day) not in stored(t)
    assert figures(t)["selftest.rep_active_days"] == working_and_active(t)[1]


def test_a_row_moved_to_another_day_or_member_moves_its_day(world):
    built = build(world)
    a, t = world.a, world.a.tenant
    with tenant_context(t):
        LeadEvent.objects.filter(pk=built["early"].pk).update(at=local(t, 2026, 3, 11, 9))
        Interaction.objects.filter(pk=built["twice"][1].pk).update(by=a.manager)
        DailySummary.objects.filter(membership=a.rep).update(day=date(2026, 3, 12))
        AuditEvent.objects.filter(pk=built["event"].pk).update(actor=a.rep.user)
    assert stored(t) == expected(t)
    assert (a.rep.pk, date(2026, 3, 3)) not in stored(t)
    assert (a.rep.pk, date(2026, 3, 11)) in stored(t)
    assert (a.manager.pk, date(2026, 3, 4)) in stored(t)
    assert (a.rep.pk, date(2026, 3, 4)) in stored(t)  # its 09:00 follow-up stays
    assert (a.rep.pk, date(2026, 3, 6)) in stored(t)
    assert (a.manager.pk, date(2026, 3, 6)) not in stored(t)


def test_a_new_seat_gets_its_users_earlier_days_and_a_deleted_seat_loses_its_rows(world):
    t = world.a.tenant
    lead = make_lead(t, created_at=local(t, 2026, 1, 5, 9))
    user = UserFactory(username="alpha-later")
    with tenant_context(t):
        # History brought in before the seat: entries by a user without a seat yet.
        LeadEvent.objects.create(
            tenant=t, lead=lead, kind=LeadEventKind.TOUCH, actor=user, at=local(t, 2026, 2, 20, 9)
        )
    assert stored(t) == expected(t)
    seat = MembershipFactory(tenant=t, role=Role.REP, user=user)
    assert (seat.pk, date(2026, 2, 20)) in stored(t)
    assert stored(t) == expected(t)
    with tenant_context(t):
        Membership.objects.filter(pk=seat.pk).delete()
    assert not any(m == seat.pk for m, _d in stored(t))


def test_a_new_time_zone_rebuilds_the_tenants_days(world, django_capture_on_commit_callbacks):
    build(world)
    t = world.a.tenant
    with django_capture_on_commit_callbacks(execute=True):
        tenant = Tenant.objects.get(pk=t.pk)
        tenant.timezone = "Europe/London"
        tenant.save()
    tenant.refresh_from_db()
    # 23:30 on 2 March and 00:30 on 3 March in Shanghai are both 2 March in London.
    assert (world.a.rep.pk, date(2026, 3, 3)) not in stored(tenant)
    assert stored(tenant) == expected(tenant)
    assert stored(world.b.tenant) == expected(world.b.tenant)


def test_tenant_b_neither_sees_nor_counts_tenant_as_days(world):
    build(world)
    a, b = world.a, world.b
    with tenant_context(b.tenant):
        assert not RepActiveDay.objects.filter(membership_id=a.rep.pk).exists()
        assert not RepActiveDay.unscoped.filter(tenant=a.tenant).exists()  # row security
    ours = figures(a.tenant)
    touch(b, make_lead(b.tenant), local(b.tenant, 2026, 3, 13, 9))
    assert figures(a.tenant) == ours
    assert stored(b.tenant) == expected(b.tenant)
    assert figures(b.tenant)["selftest.rep_active_days"] == working_and_active(b.tenant)[1]
