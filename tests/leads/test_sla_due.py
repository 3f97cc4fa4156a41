"""The per-minute SLA fan-out queues a sweep only for the tenants with clocks due
(`sla.sla_due_tenants`, one platform statement): every tenant whose sweep would fire is
listed, a tenant with nothing left to fire is not."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish

from leads.assignment import sla
from leads.models import LeadStatus, SourceGrade
from tests.conftest import platform_db
from tests.leads.factories import make_assigned_lead, make_channel, make_lead, make_rep
from tests.leads.sla_helpers import (
    HOUR,
    MINUTE,
    T0,
    _events,  # noqa: F401 (autouse: the events registered)
    set_policy,
    sweep,
)

pytestmark = platform_db


def _leads_past_every_threshold(side, channel) -> None:
    tenant, rep = side.tenant, side.rep
    make_lead(tenant, channel=channel, created_at=T0, source_grade=SourceGrade.A)
    make_assigned_lead(tenant, rep, T0, channel=channel)
    make_assigned_lead(tenant, rep, T0, channel=channel, status=LeadStatus.VALID, verified_at=T0)
    make_assigned_lead(
        tenant,
        rep,
        T0,
        channel=channel,
        first_touch_at=T0 + HOUR,
        last_touch_at=T0 + HOUR,
        touch_count=1,
        first_touch_late=False,
    )


def test_every_sweep_that_fires_was_listed_and_a_swept_tenant_is_not(world):
    a, b = world.a, world.b
    make_rep(a.tenant, "alpha-rep2")
    _leads_past_every_threshold(a, make_channel(a.tenant))
    # b: one lead, created at the last instant below: no clock of it is due then.
    last = T0 + 131 * HOUR
    make_lead(b.tenant, channel=make_channel(b.tenant), created_at=last)

    fired_at = []
    for hours in (0, 0.5, 1, 2, 30, 40, 100, 108, 109, 124, 130, 131):
        now = T0 + hours * HOUR
        due = sla.sla_due_tenants(now)
        assert b.tenant.pk not in due
        counts = sweep(a.tenant, now)
        if any(counts.values()):
            fired_at.append(hours)
            assert a.tenant.pk in due, (hours, counts)
        # Swept: whatever was due has its alert now (or was retried).
        assert a.tenant.pk not in sla.sla_due_tenants(now), hours
    assert len(fired_at) >= 4  # the thresholds fired at several instants
    assert sla.sla_due_tenants(last + MINUTE) == []


def test_an_unfired_clock_lists_its_tenant_until_the_sweep(world):
    a = world.a
    make_lead(a.tenant, channel=make_channel(a.tenant), created_at=T0)
    assert sla.sla_due_tenants(T0 + MINUTE) == []  # not late yet
    now = T0 + 2 * HOUR
    assert sla.sla_due_tenants(now) == [a.tenant.pk]
    sweep(a.tenant, now)
    assert sla.sla_due_tenants(now) == []


def test_an_inactive_policy_or_tenant_is_not_listed(world):
    a, b = world.a, world.b
    make_lead(a.tenant, channel=make_channel(a.tenant), created_at=T0)
    make_lead(b.tenant, channel=make_channel(b.tenant), created_at=T0)
    now = T0 + 2 * HOUR
    assert sla.sla_due_tenants(now) == sorted([a.tenant.pk, b.tenant.pk])
    set_policy(a.tenant, is_active=False)
    b.tenant.is_active = False
    b.tenant.save()
    assert sla.sla_due_tenants(now) == []


def test_it_runs_outside_any_tenant(world):
    from crm.tenancy import tenant_context

    with tenant_context(world.a.tenant), pytest.raises(RuntimeError):
        sla.sla_due_tenants(T0)


def test_the_beat_task_queues_a_sweep_for_the_due_tenants_only(world):
    from leads.tasks import sla_sweep_all

    a, b = world.a, world.b
    from django.utils import timezone

    make_lead(a.tenant, channel=make_channel(a.tenant), created_at=timezone.now() - 2 * HOUR)
    make_lead(b.tenant, channel=make_channel(b.tenant))  # just in: nothing due
    published = []

    def record(sender=None, body=None, **kwargs):
        published.append((sender, list(body[0])))

    before_task_publish.connect(record, weak=False)
    try:
        assert sla_sweep_all() == 1
    finally:
        before_task_publish.disconnect(record)
    assert published == [("leads.sla_sweep", [a.tenant.pk])]
