"""The minute's fan-out (`automation.due_sweep_all`) queues a due sweep only for the
active tenants with a clock due (`engine.due_tenants`) and a webhook sender only for
those with a call due (`webhooks.calls_due_tenants`): one platform statement each, on
the platform role's connection, tenant ids only, on the partial indexes of the due rows."""

from __future__ import annotations

import itertools
from datetime import timedelta
from io import StringIO

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from automation import engine, webhooks
from automation.models import CallStatus, Due, WebhookCall
from automation.tasks import due_sweep_all
from crm.celery import _cursor_key
from crm.models import OutboxEvent
from crm.tenancy import tenant_context
from tests.automation.helpers import rule
from tests.conftest import make_side, platform_db

pytestmark = platform_db

FANNED_OUT = ("automation.due_sweep", "automation.webhooks_send")
_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _no_cursor():
    """Each round in id order: no round-robin cursor left by another test."""
    for name in FANNED_OUT:
        cache.delete(_cursor_key(name))
    yield
    for name in FANNED_OUT:
        cache.delete(_cursor_key(name))


@pytest.fixture
def published():
    """(task name, its arguments) of every message published, in order."""
    seen = []

    def record(sender=None, body=None, **kwargs):
        seen.append((sender, list(body[0])))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def _event(side) -> OutboxEvent:
    return OutboxEvent.objects.create(
        tenant=side.tenant,
        kind="ticket.opened",
        object_type="service_feedback.ticket",
        object_id=1,
        key="k",
        processed_at=timezone.now(),
    )


def clock(side, *, due_in: timedelta, done: bool = False) -> Due:
    """A time condition's clock of the side, due `due_in` from now (negative: past)."""
    r = rule(side, name=f"clock {next(_numbers)}", wait_hours=1)
    now = timezone.now()
    with tenant_context(side.tenant):
        return Due.objects.create(
            tenant=side.tenant,
            rule=r,
            event=_event(side),
            subject="lead:1",
            due_at=now + due_in,
            done_at=now if done else None,
        )


def call(side, *, status=CallStatus.PENDING, next_in: timedelta | None = -timedelta(seconds=1)):
    """A webhook call of the side, its next attempt `next_in` from now (None: none)."""
    r = rule(side, name=f"hook {next(_numbers)}", action="webhook", webhook_url="https://x.test/")
    now = timezone.now()
    with tenant_context(side.tenant):
        return WebhookCall.objects.create(
            tenant=side.tenant,
            rule=r,
            subject="lead:1",
            url="https://x.test/",
            body="{}",
            status=status,
            next_attempt_at=None if next_in is None else now + next_in,
        )


def _inactive(side) -> None:
    side.tenant.is_active = False
    side.tenant.save()


# -- the listings ----------------------------------------------------------------------------


def test_a_tenant_with_a_clock_due_is_listed_one_with_none_due_is_not(world):
    a, b = world.a, world.b
    assert engine.due_tenants() == []
    clock(b, due_in=timedelta(hours=1))  # not due yet
    clock(b, due_in=-timedelta(hours=1), done=True)  # due, and handled
    assert engine.due_tenants() == []
    clock(a, due_in=-timedelta(minutes=1))
    assert engine.due_tenants() == [a.tenant.pk]
    # b's clock comes due: listed from that instant on.
    assert engine.due_tenants(timezone.now() + timedelta(hours=2)) == sorted(
        [a.tenant.pk, b.tenant.pk]
    )
    # a's sweep claims the clock: a has nothing left to do.
    with tenant_context(a.tenant):
        assert engine.sweep_due() == 1
    assert engine.due_tenants() == []


def test_a_tenant_with_a_call_due_is_listed_one_with_none_due_is_not(world):
    a, b = world.a, world.b
    assert webhooks.calls_due_tenants() == []
    call(b, next_in=timedelta(minutes=2))  # pending, its lease not over
    call(b, status=CallStatus.FAILED, next_in=timedelta(seconds=30))  # its backoff not over
    for status in (CallStatus.SENT, CallStatus.DEAD, CallStatus.HELD):
        call(b, status=status, next_in=None)
    assert webhooks.calls_due_tenants() == []
    call(a, status=CallStatus.FAILED)  # its retry due
    assert webhooks.calls_due_tenants() == [a.tenant.pk]
    call(b)  # pending, due now
    assert webhooks.calls_due_tenants() == sorted([a.tenant.pk, b.tenant.pk])
    # b's failed retry comes due later: listed then even without the pending one.
    with tenant_context(b.tenant):
        WebhookCall.objects.filter(status=CallStatus.PENDING).update(status=CallStatus.SENT)
    assert webhooks.calls_due_tenants() == [a.tenant.pk]
    later = timezone.now() + timedelta(minutes=1)
    assert webhooks.calls_due_tenants(later) == sorted([a.tenant.pk, b.tenant.pk])


def test_an_inactive_tenant_is_never_listed(world):
    a = world.a
    clock(a, due_in=-timedelta(minutes=1))
    call(a)
    assert (engine.due_tenants(), webhooks.calls_due_tenants()) == ([a.tenant.pk], [a.tenant.pk])
    _inactive(a)
    assert (engine.due_tenants(), webhooks.calls_due_tenants()) == ([], [])


def test_the_listings_read_every_tenants_rows_as_the_platform_and_return_ids_only(world):
    a, b = world.a, world.b
    for side in (a, b):
        clock(side, due_in=-timedelta(minutes=1))
        call(side)
    # The app role, with no tenant set, sees none of these rows (row-level security) ...
    with connection.cursor() as cursor:
        for table in (Due._meta.db_table, WebhookCall._meta.db_table):
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone() == (0,), table
    # ... the platform statements see both tenants', and hand back their ids only.
    for listing in (engine.due_tenants(), webhooks.calls_due_tenants()):
        assert listing == sorted([a.tenant.pk, b.tenant.pk])
        assert all(type(tenant_id) is int for tenant_id in listing)


def test_the_listings_refuse_to_run_inside_a_tenant(world):
    with tenant_context(world.a.tenant):
        with pytest.raises(RuntimeError):
            engine.due_tenants()
        with pytest.raises(RuntimeError):
            webhooks.calls_due_tenants()


@pytest.mark.parametrize(
    ("sql", "index"),
    [(engine.DUE_TENANTS_SQL, "due_open"), (webhooks.CALLS_DUE_TENANTS_SQL, "webhookcall_due")],
)
def test_each_listing_probes_its_partial_index(world, sql, index):
    for side in (world.a, world.b):
        clock(side, due_in=-timedelta(minutes=1))
        call(side)
    with transaction.atomic(using="platform"), connections["platform"].cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, {"now": timezone.now()})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert index in plan, plan


# -- the beat job ----------------------------------------------------------------------------


def test_the_beat_job_queues_work_for_the_tenants_with_work_only(world, published):
    a, b = world.a, world.b
    c, d = make_side("gamma"), make_side("delta")
    clock(a, due_in=-timedelta(minutes=1))  # a: a clock due
    call(b)  # b: a call due
    clock(c, due_in=timedelta(hours=1))  # c: neither due yet
    call(c, next_in=timedelta(minutes=1))
    clock(d, due_in=-timedelta(minutes=1))  # d: both due, but inactive
    call(d)
    _inactive(d)
    published.clear()
    assert due_sweep_all() == 1
    assert published == [
        ("automation.webhooks_send", [b.tenant.pk]),
        ("automation.due_sweep", [a.tenant.pk]),
    ]
    published.clear()
    with tenant_context(a.tenant):
        engine.sweep_due()
    with tenant_context(b.tenant):
        WebhookCall.objects.update(status=CallStatus.SENT, next_attempt_at=None)
    assert due_sweep_all() == 0
    assert published == []


def test_the_beat_job_keeps_the_round_robin_and_the_expiry(world):
    """The fan-out goes through crm.jobs.per_tenant: after the tenant whose sweep a worker
    started last, each message expiring before the next minute's."""
    a, b = world.a, world.b
    c = make_side("gamma")
    for side in (a, b, c):
        clock(side, due_in=-timedelta(minutes=1))
    cache.set(_cursor_key("automation.due_sweep"), a.tenant.pk)
    seen = []

    def record(sender=None, body=None, headers=None, **kwargs):
        if sender == "automation.due_sweep":
            seen.append((body[0][0], headers["expires"] is not None))

    before_task_publish.connect(record, weak=False)
    try:
        assert due_sweep_all() == 3
    finally:
        before_task_publish.disconnect(record)
    assert seen == [(b.tenant.pk, True), (c.tenant.pk, True), (a.tenant.pk, True)]


def test_the_command_still_runs_every_active_tenants_due_clocks(world):
    a, b = world.a, world.b
    clock(a, due_in=-timedelta(minutes=1))
    clock(b, due_in=timedelta(hours=1))
    call_command("automation_due", stdout=(stdout := StringIO()))
    out = stdout.getvalue()
    assert f"{a.tenant.slug}: 1" in out
    assert f"{b.tenant.slug}: 0" in out
    assert engine.due_tenants() == []
