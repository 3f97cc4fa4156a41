"""The SLA sweep as a whole (F11, F13): the off switch, one tenant at a time, each alert
once across repeated sweeps and cheaply, the operator's command, two sweeps at once on real
PostgreSQL connections, and beat's task through a real Celery worker."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from crm.models import Notification
from crm.tenancy import tenant_context
from leads.assignment import sla
from leads.models import (
    AssignmentDecision,
    DecisionKind,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    SlaAlert,
    SlaPolicy,
    SourceGrade,
)
from tests.conftest import platform_db, wait_for
from tests.leads.factories import make_assigned_lead, make_channel, make_lead, make_rep
from tests.leads.sla_helpers import (
    A_UNASSIGNED,
    HOUR,
    MINUTE,
    T0,
    _events,  # noqa: F401 (autouse: the events registered)
    channel_fixture,  # noqa: F401 (the channel fixture)
    fired,
    link,
    only,
    reload,
    set_policy,
    side_a,  # noqa: F401 (the fixture `a`)
    sweep,
    told,
    unassigned_lead,
)

pytestmark = pytest.mark.django_db


# --- off switch and isolation ----------------------------------------------------------------


def _every_threshold_due(side, channel) -> list[Lead]:
    """One lead past each threshold at T0 + 100 h."""
    tenant, rep = side.tenant, side.rep
    return [
        make_lead(tenant, channel=channel, created_at=T0, source_grade=SourceGrade.A),
        make_assigned_lead(tenant, rep, T0, channel=channel),
        make_assigned_lead(
            tenant, rep, T0, channel=channel, status=LeadStatus.VALID, verified_at=T0
        ),
        make_assigned_lead(
            tenant,
            rep,
            T0,
            channel=channel,
            first_touch_at=T0 + HOUR,
            last_touch_at=T0 + HOUR,
            touch_count=1,
            first_touch_late=False,
        ),
    ]


def test_an_inactive_policy_fires_nothing(a, channel):
    set_policy(a.tenant, is_active=False)
    leads = _every_threshold_due(a, channel)
    for hours in (1, 30, 40, 100):
        assert sweep(a.tenant, T0 + hours * HOUR) == only({})
    assert fired(a.tenant) == []
    with tenant_context(a.tenant):
        assert not Notification.objects.exists()
        assert not LeadEvent.objects.filter(kind=LeadEventKind.SLA).exists()
    assert reload(a.tenant, leads[3]).owner_id == a.rep.pk


def test_a_sweep_touches_only_its_own_tenant(a, world, channel):
    make_rep(a.tenant, "alpha-rep2")
    make_rep(world.b.tenant, "beta-rep2")
    ours = _every_threshold_due(a, channel)
    theirs = _every_threshold_due(world.b, make_channel(world.b.tenant))

    counts = sweep(a.tenant, T0 + 100 * HOUR)
    assert counts == only(
        {}, a_unassigned=1, unassigned=1, unverified_rep=2, no_followup=1, no_second_touch=1
    )
    assert {lead_id for lead_id, _t, _r in fired(a.tenant)} == {lead.pk for lead in ours}
    assert fired(world.b.tenant) == []
    with tenant_context(world.b.tenant):
        assert not Notification.objects.exists()
        assert not LeadEvent.objects.filter(kind=LeadEventKind.SLA).exists()
        assert not SlaPolicy.objects.exists()
    assert reload(world.b.tenant, theirs[3]).owner_id == world.b.rep.pk
    # b's own sweep then fires b's, the same way.
    assert sweep(world.b.tenant, T0 + 100 * HOUR) == counts


# --- once, and cheaply ------------------------------------------------------------------------


def test_each_threshold_fires_once_across_repeated_sweeps(a, channel):
    make_rep(a.tenant, "alpha-rep2")
    leads = _every_threshold_due(a, channel)
    total = Counter()
    for minutes in range(0, 10):
        total.update(sweep(a.tenant, T0 + 100 * HOUR + minutes * MINUTE))
    # The escalation comes 8 h after the reminder; the returned lead's new round gets its
    # own reminder 24 h after the re-dispatch (T0 + 124 h).
    for hours in (108, 109, 130, 131):
        total.update(sweep(a.tenant, T0 + hours * HOUR))
    assert dict(total) == only(
        {},
        a_unassigned=1,
        unassigned=1,
        unverified_rep=3,
        unverified_mgr=1,
        no_followup=1,
        no_second_touch=1,
    )
    with tenant_context(a.tenant):
        assert SlaAlert.objects.count() == 8
        per_key = Counter(
            Notification.objects.values_list("event", "recipient_id", "link").order_by()
        )
    assert per_key and set(per_key.values()) == {1}
    assert {link(lead) for lead in leads} <= {key[2] for key in per_key}


def test_a_sweep_with_nothing_due_is_a_handful_of_statements(
    a, channel, django_assert_max_num_queries
):
    with tenant_context(a.tenant):
        Lead.objects.bulk_create(
            Lead(
                tenant=a.tenant,
                channel=channel,
                company=f"公司{i}",
                source_grade=SourceGrade.A,
                created_at=T0,
            )
            for i in range(300)
        )
    assert sweep(a.tenant, T0 + 3 * HOUR) == only({}, a_unassigned=300, unassigned=300)
    with django_assert_max_num_queries(25):
        assert sweep(a.tenant, T0 + 3 * HOUR + MINUTE) == only({})


# --- the operator's command -------------------------------------------------------------------


def test_the_command_sweeps_a_tenant_as_of_a_given_time(a, world, channel):
    lead = unassigned_lead(a, channel, T0, grade=SourceGrade.A)
    unassigned_lead(world.b, make_channel(world.b.tenant), T0, grade=SourceGrade.A)
    out = io.StringIO()
    # 09:30 in Shanghai (the tenant's zone) is T0 + 30 min.
    call_command("sla_sweep", "--tenant", a.tenant.slug, "--now", "2026-03-02T09:30", stdout=out)
    assert json.loads(out.getvalue()) == {a.tenant.slug: only({}, a_unassigned=1)}
    assert fired(a.tenant) == [(lead.pk, A_UNASSIGNED, 0)]
    assert fired(world.b.tenant) == []

    out = io.StringIO()
    call_command("sla_sweep", "--now", "2026-03-02T01:30:00+00:00", stdout=out)
    result = json.loads(out.getvalue())
    assert result[a.tenant.slug] == only({})
    assert result[world.b.tenant.slug] == only({}, a_unassigned=1)


# --- two sweeps at once ---------------------------------------------------------------------


def _race(tenant, work, n=2):
    """Run `work()` in n threads, each on its own connection inside the tenant's
    transaction, released together by a barrier; returns their results."""
    start = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            with tenant_context(tenant):
                start.wait(timeout=10)
                results[i] = work(i)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_time_fire_and_tell_once(world):
    a = world.a
    make_rep(a.tenant, "alpha-rep2")
    channel = make_channel(a.tenant)
    leads = _every_threshold_due(a, channel)
    leads += [
        make_lead(a.tenant, channel=channel, created_at=T0, source_grade=SourceGrade.A)
        for _ in range(20)
    ]
    now = T0 + 100 * HOUR

    results = _race(a.tenant, lambda i: sla.sla_sweep(now))

    total = Counter()
    for counts in results:
        total.update(counts)
    assert dict(total) == only(
        {}, a_unassigned=21, unassigned=21, unverified_rep=2, no_followup=1, no_second_touch=1
    )
    with tenant_context(a.tenant):
        per_alert = Counter(SlaAlert.objects.values_list("lead_id", "threshold", "round"))
        per_note = Counter(
            Notification.objects.values_list("event", "recipient_id", "link").order_by()
        )
        returns = AssignmentDecision.objects.filter(kind=DecisionKind.RETURN).count()
        sla_events = LeadEvent.objects.filter(kind=LeadEventKind.SLA).count()
    assert len(per_alert) == 46 and set(per_alert.values()) == {1}
    assert set(per_note.values()) == {1}
    assert per_note[("sla.a_unassigned", a.manager.pk, link(leads[0]))] == 1
    assert per_note[("sla.unverified_rep", a.rep.pk, link(leads[1]))] == 1
    assert per_note[("lead.returned", a.rep.pk, link(leads[3]))] == 1
    assert returns == 2  # the pooling and the re-dispatch, once
    assert sla_events == 46


@pytest.mark.django_db(transaction=True)
def test_the_constraint_alone_lets_one_of_two_concurrent_inserts_fire(world):
    """Without the sweep's lock: two transactions insert the same alerts at the same
    moment. The second waits for the first's uncommitted rows and then skips them, so
    each lead comes back to exactly one of them: only that one tells anyone."""
    a = world.a
    channel = make_channel(a.tenant)
    with tenant_context(a.tenant):
        Lead.objects.bulk_create(
            Lead(tenant=a.tenant, channel=channel, company=f"公司{i}", source_grade="A")
            for i in range(200)
        )
    now = timezone.now()
    inserted = threading.Event()

    def work(i):
        if i == 1:
            inserted.wait(timeout=10)  # the first has inserted and not committed yet
        rows = sla.fire(A_UNASSIGNED, Lead.objects.all(), now)
        if i == 0:
            inserted.set()
            threading.Event().wait(0.5)  # hold the transaction open a moment
        return rows

    first, second = _race(a.tenant, work)
    assert len(first) == 200 and second == []

    # And released together, both racing over the same rows:
    with tenant_context(a.tenant):
        Lead.objects.update(dispatch_round=1)
    one, two = _race(a.tenant, lambda i: sla.fire(A_UNASSIGNED, Lead.objects.all(), now))
    assert len(one) + len(two) == 200
    assert not {lead_id for lead_id, _r in one} & {lead_id for lead_id, _r in two}
    with tenant_context(a.tenant):
        assert SlaAlert.objects.count() == 400


# --- through beat's task and a real worker ----------------------------------------------------


@platform_db  # the fan-out lists the tenants with clocks due on the platform connection
def test_the_beat_task_sweeps_every_tenant_on_a_worker(world, celery_worker_thread):
    from leads.tasks import sla_sweep_all

    late = timezone.now() - 31 * MINUTE
    ours = make_lead(
        world.a.tenant, make_channel(world.a.tenant), created_at=late, source_grade="A"
    )
    theirs = make_lead(
        world.b.tenant, make_channel(world.b.tenant), created_at=late, source_grade="A"
    )
    sla_sweep_all.delay()

    def alerted(tenant, lead):
        return lambda: fired(tenant) == [(lead.pk, A_UNASSIGNED, 0)]

    assert wait_for(alerted(world.a.tenant, ours))
    assert wait_for(alerted(world.b.tenant, theirs))
    assert wait_for(lambda: told(world.a.tenant, "sla.a_unassigned") != [])
    assert told(world.a.tenant, "sla.a_unassigned") == [(world.a.manager.pk, link(ours))]


def test_every_sla_event_is_registered_with_a_title(english):
    from crm.notify import get_event_type, render_template

    sla.register()
    sla.register()  # idempotent
    params = {"lead": "宁波恒力 · 王工", "minutes": 30, "hours": 24, "rep": "张三"}
    for key in sla.EVENTS.values():
        event = get_event_type(key)
        assert event is not None, key
        title = render_template(event.title, params)
        assert "%(" not in title and "宁波恒力" in title, (key, title)
