"""The quality alerts' beat job (`service_feedback.alerts_sweep_all`) queues a sweep only
for the active tenants whose sweep would change something (`alerts.due_tenants`, one
platform statement, tenant ids only): a tenant is listed exactly when its sweep at that
instant raises, feeds or closes an alert, with its own settings or the defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.utils import timezone

from crm.celery import _cursor_key
from crm.tenancy import tenant_context
from service_feedback import alerts
from service_feedback.models import QualityAlert, ServiceSettings, Ticket
from service_feedback.tasks import alerts_sweep_all
from tests.conftest import make_side, platform_db
from tests.service_feedback.helpers import upsert

pytestmark = platform_db

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
TASK = "service_feedback.alerts_sweep"


@pytest.fixture(autouse=True)
def _no_cursor():
    """Each round in id order: no round-robin cursor left by another test."""
    cache.delete(_cursor_key(TASK))
    yield
    cache.delete(_cursor_key(TASK))


def fault(side, n, *, province="江苏", hours_ago=1.0) -> Ticket:
    """Ticket n of the side's cluster HX-200 × E17 × `province`, saved as intake saves it
    (its cluster checked: attached to the open alert, or raising one at the threshold)."""
    return upsert(
        side,
        f"HX-200-E17-{province}-{n}",
        subject="HX-200 报 E17",
        product_model="HX-200",
        fault_code="E17",
        province=province,
        opened_at=timezone.now() - timedelta(hours=hours_ago),
    )[0]


def settings_of(side, **fields) -> None:
    with tenant_context(side.tenant):
        ServiceSettings.objects.update_or_create(tenant=side.tenant, defaults=fields)


def _state(side):
    with tenant_context(side.tenant):
        return (
            sorted(Ticket.objects.values_list("pk", "alert_id")),
            sorted(QualityAlert.objects.values_list("pk", "closed_at", "last_ticket_at")),
        )


def listed_and_changed(side, now=None) -> tuple[bool, bool]:
    """(is the side listed at `now`, did its sweep at `now` then change any alert or
    ticket)."""
    now = now or timezone.now()
    listed = side.tenant.pk in alerts.due_tenants(now)
    before = _state(side)
    with tenant_context(side.tenant):
        alerts.sweep(side.tenant, now=now)
    return listed, _state(side) != before


def open_alerts(side) -> list[QualityAlert]:
    with tenant_context(side.tenant):
        return list(QualityAlert.objects.filter(closed_at__isnull=True))


def test_a_tenant_is_listed_exactly_when_its_sweep_changes_something(world):
    a, b = world.a, world.b
    settings_of(a, alert_threshold=6)
    for n in range(5):
        fault(a, n)
        fault(b, n, province="浙江", hours_ago=80)  # b: out of the window
    assert open_alerts(a) == []
    assert listed_and_changed(a) == (False, False)  # 5 of 6: nothing to raise
    # The threshold lowered (a save's check did not run with it): the sweep raises.
    settings_of(a, alert_threshold=5)
    assert listed_and_changed(a) == (True, True)
    assert len(open_alerts(a)) == 1
    assert listed_and_changed(a) == (False, False)  # raised, every ticket attached
    # A ticket of the open alert's cluster left unattached (a lost save): fed to it.
    sixth = fault(a, 5, hours_ago=0)
    assert sixth.alert_id is not None
    with tenant_context(a.tenant):
        Ticket.objects.filter(pk=sixth.pk).update(alert=None)
    assert listed_and_changed(a) == (True, True)
    with tenant_context(a.tenant):
        assert Ticket.objects.get(pk=sixth.pk).alert_id == open_alerts(a)[0].pk
    assert listed_and_changed(a) == (False, False)
    # Unattached again, but alone in the window 71 h on: below the threshold, the sweep
    # does not feed it, and the alert is not quiet yet.
    with tenant_context(a.tenant):
        Ticket.objects.filter(pk=sixth.pk).update(alert=None)
    assert listed_and_changed(a, timezone.now() + 71 * HOUR) == (False, False)
    # Quiet for its 7 days: closed.
    later = timezone.now() + 8 * DAY
    assert listed_and_changed(a, later) == (True, True)
    assert open_alerts(a) == []
    assert listed_and_changed(a, later) == (False, False)
    # Now: five tickets of the window in a closed alert, one unattached: no alert to feed,
    # not enough to raise.
    assert listed_and_changed(a) == (False, False)
    assert b.tenant.pk not in alerts.due_tenants()
    assert listed_and_changed(b) == (False, False)


def test_each_tenant_is_listed_with_its_own_window(world):
    a, b = world.a, world.b
    for side in (a, b):
        for n in range(5):
            fault(side, n, hours_ago=80)  # outside the default 72 h: no alert at the save
    assert open_alerts(a) == open_alerts(b) == []
    settings_of(a, alert_window_hours=100)
    assert alerts.due_tenants() == [a.tenant.pk]
    assert listed_and_changed(a) == (True, True)
    assert len(open_alerts(a)) == 1
    assert listed_and_changed(b) == (False, False)  # the defaults: still outside
    assert alerts.due_tenants() == []


def test_an_inactive_tenant_is_never_listed(world):
    a = world.a
    for n in range(5):
        fault(a, n)
    with tenant_context(a.tenant):
        QualityAlert.objects.update(last_ticket_at=timezone.now() - 9 * DAY)
    assert alerts.due_tenants() == [a.tenant.pk]
    a.tenant.is_active = False
    a.tenant.save()
    assert alerts.due_tenants() == []


def test_the_listing_reads_every_tenants_rows_as_the_platform_and_returns_ids_only(world):
    a, b = world.a, world.b
    settings_of(b, alert_threshold=6)
    for n in range(5):
        fault(a, n)  # a: an alert raised at the save ...
        fault(b, n)  # b: five tickets waiting below its threshold
    with tenant_context(a.tenant):
        QualityAlert.objects.update(last_ticket_at=timezone.now() - 9 * DAY)  # ... quiet
    settings_of(b, alert_threshold=5)
    # The app role, with no tenant set, sees none of these rows (row-level security) ...
    with connection.cursor() as cursor:
        for model in (Ticket, QualityAlert, ServiceSettings):
            cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")
            assert cursor.fetchone() == (0,), model
    # ... the platform statement sees both tenants', and hands back their ids only.
    listing = alerts.due_tenants()
    assert listing == sorted([a.tenant.pk, b.tenant.pk])
    assert all(type(tenant_id) is int for tenant_id in listing)


def test_the_listing_refuses_to_run_inside_a_tenant(world):
    with tenant_context(world.a.tenant), pytest.raises(RuntimeError):
        alerts.due_tenants()


def _plan(cursor, now) -> str:
    params = {"now": now, "threshold": 5, "window": 72, "quiet": 7, "earliest": now - 72 * HOUR}
    cursor.execute("SET LOCAL enable_seqscan = off")
    cursor.execute("EXPLAIN " + alerts.DUE_TENANTS_SQL, params)
    return "\n".join(row[0] for row in cursor.fetchall())


def test_the_listing_reads_each_tenant_by_index(world):
    for side in (world.a, world.b):
        for n in range(5):
            fault(side, n)
            fault(side, n, province="浙江", hours_ago=100)
    with transaction.atomic(using="platform"), connections["platform"].cursor() as cursor:
        plan = _plan(cursor, timezone.now())
    assert "Seq Scan" not in plan, plan
    assert "quality_alert_one_open" in plan, plan
    assert "Index Cond: ((tenant_id = t.id) AND (opened_at >= " in plan, plan


@pytest.mark.django_db(transaction=True, databases=["default", "platform", "owner"])
def test_with_a_years_history_the_window_is_a_range_of_ticket_opened(world):
    """Each tenant's tickets of the window only, by the range of ticket_opened (tenant,
    opened_at), not the tenant's whole history by ticket_cluster or the tenant's index:
    a year of tickets per tenant written and analysed as the owner, then rolled back."""
    for side in (world.a, world.b):
        fault(side, 0)
    now = timezone.now()
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        table = Ticket._meta.db_table
        cursor.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s AND column_name <> 'id'"
            " ORDER BY ordinal_position",
            [table],
        )
        columns = [row[0] for row in cursor.fetchall()]
        made = {
            "public_id": "gen_random_uuid()",
            "external_id": "'H-' || g",
            "opened_at": "%(now)s - g * interval '4 hours'",  # 2,000 tickets: 333 days
            "product_model": "'M' || mod(g, 20)",
            "fault_code": "'E' || mod(g, 7)",
            "province": "'P' || mod(g, 5)",
            "alert_id": "NULL",
        }
        values = ", ".join(made.get(c, f"k.{c}") for c in columns)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values}"
            f" FROM {table} k, generate_series(1, 2000) g",
            {"now": now},
        )
        assert cursor.rowcount == 4000
        cursor.execute(f"ANALYZE {table}")
        plan = _plan(cursor, now)
        transaction.set_rollback(True, using="owner")
    assert "Seq Scan" not in plan, plan
    tickets = [line for line in plan.splitlines() if f" {Ticket._meta.db_table} " in line]
    assert tickets, plan
    assert "ticket_opened" in plan, plan
    # Neither the clusters' index nor the tenant's own: each reads the tenant's history.
    assert "ticket_cluster" not in plan, plan
    assert f"{Ticket._meta.db_table}_tenant_id" not in plan, plan


def test_the_beat_job_queues_a_sweep_for_the_tenants_with_work_only(world):
    a, b = world.a, world.b
    c, d = make_side("gamma"), make_side("delta")
    for n in range(5):
        fault(a, n)  # a: an alert raised at the save, quiet below
        fault(b, n, hours_ago=80)  # b: out of the window
        fault(d, n)  # d: as a, but inactive
    for n in range(4):
        fault(c, n)  # c: one short of the threshold
    for side in (a, d):
        with tenant_context(side.tenant):
            QualityAlert.objects.update(last_ticket_at=timezone.now() - 9 * DAY)
    d.tenant.is_active = False
    d.tenant.save()
    published = []

    def record(sender=None, body=None, headers=None, **kwargs):
        published.append((sender, list(body[0]), headers["expires"] is not None))

    before_task_publish.connect(record, weak=False)
    try:
        assert alerts_sweep_all() == 1
        assert published == [(TASK, [a.tenant.pk], True)]
        fault(c, 4)  # c's fifth: raised at the save, nothing left for the sweep
        with tenant_context(c.tenant):
            Ticket.objects.update(alert=None)  # ... unless the save's attach was lost
            QualityAlert.objects.all().delete()
        published.clear()
        assert alerts_sweep_all() == 2
        assert published == [(TASK, [a.tenant.pk], True), (TASK, [c.tenant.pk], True)]
    finally:
        before_task_publish.disconnect(record)
