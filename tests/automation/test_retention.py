"""The nightly retention (crm.log_retention, automation.log_retention): rows past their
days deleted, younger ones kept; unprocessed events, events a clock or a call still points
at, open clocks, unfinished calls and firings that can still deduplicate kept; one tenant's
run never touching another's rows; batches looping until done; EVENT_LOG_DAYS raised to
what the rules read; and every statement found through an index."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automation import log_retention as automation_retention
from automation.models import CallStatus, Due, Firing, Miss, Rule, Run, WebhookCall
from crm import events, log_retention
from crm.celery import _cursor_key
from crm.models import OutboxEvent
from crm.tenancy import tenant_context
from tests.automation.helpers import customer, drain, enquiry, rule

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def event(side, obj, age: timedelta, *, processed: bool = True) -> OutboxEvent:
    """A `ticket.opened` event about `obj`, `age` old, processed (the log) or not."""
    now = timezone.now()
    row = events.event_row("ticket.opened", obj, at=now - age)
    row.processed_at = row.at + timedelta(seconds=1) if processed else None
    with tenant_context(side.tenant):
        row.save(force_insert=True)
    return row


def run(side, r: Rule, ev: OutboxEvent | None, age: timedelta) -> Run:
    with tenant_context(side.tenant):
        return Run.objects.create(
            tenant=side.tenant,
            rule=r,
            event=ev,
            kind="ticket.opened",
            subject="customer:1",
            at=timezone.now() - age,
            outcome="fired",
        )


def miss(side, r: Rule, ev: OutboxEvent | None, age: timedelta) -> Miss:
    with tenant_context(side.tenant):
        return Miss.objects.create(
            tenant=side.tenant,
            event=ev,
            kind="ticket.opened",
            key="customer:1",
            object="ticket:1",
            at=timezone.now() - age,
            rules=[r.pk],
            counts=[None],
        )


def clock(side, r: Rule, ev: OutboxEvent, age: timedelta, *, done: bool) -> Due:
    """A clock that fell due `age` ago, handled then (or still open)."""
    at = timezone.now() - age
    with tenant_context(side.tenant):
        return Due.objects.create(
            tenant=side.tenant,
            rule=r,
            event=ev,
            subject="customer:1",
            due_at=at,
            done_at=at if done else None,
        )


def call(side, r: Rule, ev: OutboxEvent | None, age: timedelta, status: str) -> WebhookCall:
    with tenant_context(side.tenant):
        return WebhookCall.objects.create(
            tenant=side.tenant,
            rule=r,
            event=ev,
            subject="customer:1",
            url="https://hooks.example.com/crm",
            body="{}",
            status=status,
            created_at=timezone.now() - age,
        )


def firing(side, r: Rule, age: timedelta, window: int) -> Firing:
    with tenant_context(side.tenant):
        return Firing.objects.create(
            tenant=side.tenant,
            rule=r,
            subject="customer:1",
            window=window,
            at=timezone.now() - age,
        )


def left(side, model, rows) -> set[int]:
    """Which of `rows` are still there (seen from inside their tenant)."""
    with tenant_context(side.tenant):
        return set(model.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True))


def world_of_logs(side) -> dict:
    """Every kind of row the job deletes or keeps, at both sides of its limit (defaults:
    180 days for the run log, clocks and calls; 400 for the event log)."""
    cust = customer(side, name=f"{side.tenant.slug} 客户")
    r = rule(side, name="通知", to_role="manager")
    other = rule(side, name="第二条", to_role="manager")
    ev = {
        "old": event(side, cust, 401 * DAY),
        "young": event(side, cust, 399 * DAY),
        "old_unprocessed": event(side, cust, 401 * DAY, processed=False),
        "old_with_clock": event(side, cust, 420 * DAY),
        "old_with_call": event(side, cust, 410 * DAY),
        "recent": event(side, cust, 2 * DAY),
    }
    rows = {
        "events": ev,
        "runs": {
            "old": run(side, r, ev["recent"], 181 * DAY),
            "old_other_rule": run(side, other, ev["recent"], 200 * DAY),
            "young": run(side, r, ev["recent"], 179 * DAY),
            "young_other_rule": run(side, other, ev["recent"], 1 * DAY),
        },
        "misses": {
            "old": miss(side, r, ev["recent"], 181 * DAY),
            "young": miss(side, r, ev["recent"], 179 * DAY),
        },
        "clocks": {
            "old_done": clock(side, r, ev["recent"], 181 * DAY, done=True),
            "young_done": clock(side, r, ev["young"], 179 * DAY, done=True),
            # A clock never handled (its rule switched off meanwhile): kept, and so its event.
            "old_open": clock(side, r, ev["old_with_clock"], 419 * DAY, done=False),
        },
        "calls": {
            "old_sent": call(side, r, ev["recent"], 181 * DAY, CallStatus.SENT),
            "old_dead": call(side, r, ev["recent"], 190 * DAY, CallStatus.DEAD),
            # Held while its rule is paused: not finished, kept with its event.
            "old_held": call(side, r, ev["old_with_call"], 409 * DAY, CallStatus.HELD),
            "young_sent": call(side, r, ev["recent"], 179 * DAY, CallStatus.SENT),
        },
    }
    return {"customer": cust, "rule": r, "other": other, **rows}


def test_rows_past_their_days_go_and_younger_ones_stay(world):
    a = world.a
    logs = world_of_logs(a)
    done = log_retention.prune(a.tenant)

    ev = logs["events"]
    assert left(a, OutboxEvent, ev.values()) == {
        ev[name].pk
        for name in ("young", "old_unprocessed", "old_with_clock", "old_with_call", "recent")
    }
    runs, misses, clocks, calls = logs["runs"], logs["misses"], logs["clocks"], logs["calls"]
    assert left(a, Run, runs.values()) == {runs["young"].pk, runs["young_other_rule"].pk}
    assert left(a, Miss, misses.values()) == {misses["young"].pk}
    assert left(a, Due, clocks.values()) == {clocks["young_done"].pk, clocks["old_open"].pk}
    assert left(a, WebhookCall, calls.values()) == {
        calls["old_held"].pk,
        calls["young_sent"].pk,
    }
    assert done == {
        "automation.runs": 2,
        "automation.misses": 1,
        "automation.clocks": 1,
        "automation.webhook_calls": 2,
        "automation.firings": 0,
        "events": 1,
    }


def test_an_event_goes_once_its_clock_and_call_are_gone(world):
    """The clock and the call that kept their old events are deleted once handled and
    finished (180 days), and the events with them, the same night (the apps go first)."""
    a = world.a
    logs = world_of_logs(a)
    clocks, calls, ev = logs["clocks"], logs["calls"], logs["events"]
    with tenant_context(a.tenant):
        Due.objects.filter(pk=clocks["old_open"].pk).update(done_at=clocks["old_open"].due_at)
        WebhookCall.objects.filter(pk=calls["old_held"].pk).update(status=CallStatus.DEAD)
    log_retention.prune(a.tenant)
    assert left(a, Due, [clocks["old_open"]]) == set()
    assert left(a, WebhookCall, [calls["old_held"]]) == set()
    assert left(a, OutboxEvent, [ev["old_with_clock"], ev["old_with_call"]]) == set()


def test_firings_stay_while_they_can_deduplicate(world):
    """A firing goes a day after its rule's cool-down (a day after it was made without
    one): until then an event of the same window would find it."""
    a = world.a
    day_rule = rule(a, name="每天一次", to_role="manager", cooldown_minutes=24 * 60)
    month_rule = rule(a, name="每月一次", to_role="manager", cooldown_minutes=30 * 24 * 60)
    no_cooldown = rule(a, name="每次", to_role="manager", cooldown_minutes=0)
    spent = [
        firing(a, day_rule, 2 * DAY + HOUR, window=1),
        firing(a, month_rule, 31 * DAY + HOUR, window=1),
        firing(a, no_cooldown, DAY + HOUR, window=-1),
    ]
    live = [
        firing(a, day_rule, 2 * DAY - HOUR, window=2),
        firing(a, month_rule, 20 * DAY, window=2),
        firing(a, no_cooldown, DAY - HOUR, window=-2),
    ]
    done = log_retention.prune(a.tenant)
    assert left(a, Firing, spent + live) == {f.pk for f in live}
    assert done["automation.firings"] == 3


def test_the_engines_own_rows_age_out(world):
    """Rows as the engine writes them (a drained enquiry: its run, a miss, the firing),
    moved back in time, are deleted; the same rows of the day are not."""
    a = world.a
    customer(a)
    fires = rule(a, name="DN50", condition='product_model == "DN50"', to_role="manager")
    rule(a, name="DN80", condition='product_model == "DN80"', to_role="manager")
    enquiry(a, 1)
    drain(a)
    with tenant_context(a.tenant):
        assert Run.objects.filter(rule=fires).count() == 1
        assert Miss.objects.count() == 1 and Firing.objects.filter(rule=fires).count() == 1
        counts = (Run.objects.count(), Miss.objects.count(), Firing.objects.count())
    log_retention.prune(a.tenant)
    with tenant_context(a.tenant):
        assert (Run.objects.count(), Miss.objects.count(), Firing.objects.count()) == counts
        Run.objects.update(at=timezone.now() - 181 * DAY)
        Miss.objects.update(at=timezone.now() - 181 * DAY)
        Firing.objects.update(at=timezone.now() - 3 * DAY)
        OutboxEvent.objects.update(at=timezone.now() - 401 * DAY)
    log_retention.prune(a.tenant)
    with tenant_context(a.tenant):
        assert (Run.objects.count(), Miss.objects.count(), Firing.objects.count()) == (0, 0, 0)
        assert not OutboxEvent.objects.exists()


def test_one_tenants_run_leaves_another_tenants_rows(world):
    a, b = world.a, world.b
    world_of_logs(a)
    theirs = world_of_logs(b)
    firing(b, theirs["rule"], 3 * DAY, window=1)
    with tenant_context(b.tenant):
        before = {
            model: model.objects.count()
            for model in (OutboxEvent, Run, Miss, Due, WebhookCall, Firing)
        }
    done = log_retention.prune(a.tenant)
    assert done["events"] == 1 and done["automation.runs"] == 2
    with tenant_context(b.tenant):
        after = {model: model.objects.count() for model in before}
    assert after == before
    assert log_retention.prune(b.tenant)["automation.firings"] == 1  # b's own run deletes


def test_batches_loop_until_every_old_row_is_gone(world):
    """Five old rows of each kind with batches of two: three statements each, the last
    one short; the young rows after them stay."""
    a = world.a
    cust = customer(a)
    r = rule(a, name="通知", to_role="manager")
    old_events = [event(a, cust, 401 * DAY + n * HOUR) for n in range(5)]
    young_event = event(a, cust, DAY)
    old = [run(a, r, young_event, 181 * DAY + n * HOUR) for n in range(5)]
    old_misses = [miss(a, r, young_event, 181 * DAY - n * HOUR) for n in range(5)]
    young = [run(a, r, young_event, DAY), miss(a, r, young_event, DAY)]
    old_calls = [call(a, r, young_event, 181 * DAY - n * HOUR, CallStatus.SENT) for n in range(5)]
    young_call = call(a, r, young_event, DAY, CallStatus.SENT)

    with CaptureQueriesContext(connection) as queries:
        done = log_retention.prune(a.tenant, batch=2)

    assert done["events"] == 5 and done["automation.runs"] == 5
    assert done["automation.misses"] == 5 and done["automation.webhook_calls"] == 5
    assert left(a, OutboxEvent, [*old_events, young_event]) == {young_event.pk}
    assert left(a, Run, old + young[:1]) == {young[0].pk}
    assert left(a, Miss, [*old_misses, young[1]]) == {young[1].pk}
    assert left(a, WebhookCall, [*old_calls, young_call]) == {young_call.pk}

    def statements(table: str) -> int:
        return sum(1 for q in queries.captured_queries if f"DELETE FROM {table}" in q["sql"])

    # Runs and events: 2 + 2 + 1, then nothing more to ask. Misses and calls, walked in
    # their order: 2 + 2, then the batch that holds the young row (its old one deleted).
    assert statements("crm_outboxevent") == 3
    assert statements("automation_run") == 3
    assert statements("automation_miss") == 3
    assert statements("automation_webhookcall") == 3


def test_a_walk_steps_over_rows_it_must_keep(world):
    """Unfinished calls older than the limit neither stop the walk nor are deleted; the
    finished ones around them are."""
    a = world.a
    cust = customer(a)
    r = rule(a, name="通知", to_role="manager")
    ev = event(a, cust, DAY)
    rows = [
        call(a, r, ev, 190 * DAY - n * HOUR, CallStatus.PENDING if n % 2 else CallStatus.SENT)
        for n in range(7)
    ]
    log_retention.prune(a.tenant, batch=2)
    assert left(a, WebhookCall, rows) == {row.pk for n, row in enumerate(rows) if n % 2}


def test_event_log_days_are_raised_to_what_the_rules_read(world, settings):
    """A windowed count reaches back 365 days and the dry run 30 more: EVENT_LOG_DAYS
    below that is raised (said at start-up: a system check); the run log's days raise it
    too, so no run outlives its event."""
    a = world.a
    cust = customer(a)
    settings.EVENT_LOG_DAYS = 100
    assert log_retention.event_days() == 365 + 30
    [warning] = log_retention.check_settings()
    assert warning.id == "crm.W001" and "raised to 395" in warning.msg
    kept, gone = event(a, cust, 394 * DAY), event(a, cust, 396 * DAY)
    log_retention.prune(a.tenant)
    assert left(a, OutboxEvent, [kept, gone]) == {kept.pk}

    settings.AUTOMATION_LOG_DAYS = 500
    assert log_retention.event_days() == 500
    settings.EVENT_LOG_DAYS = 600
    assert log_retention.event_days() == 600
    assert log_retention.check_settings() == []
    settings.AUTOMATION_LOG_DAYS = 0  # at least a day
    assert automation_retention.log_days() == 1


def test_a_rule_cannot_count_over_more_than_365_days(world, en):
    data = {
        "name": "一年以上",
        "trigger": "ticket.opened",
        "count_at_least": "3",
        "count_days": "366",
        "action": "notify",
        "to_role": "manager",
        "cooldown_minutes": "1440",
    }
    response = en(world.a.admin).post(reverse("admin:automation_rule_add"), data)
    assert response.status_code == 200
    assert "count_days" in response.context["adminform"].form.errors
    data["count_days"] = "365"
    assert en(world.a.admin).post(reverse("admin:automation_rule_add"), data).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_nightly_task_commits_each_tenants_run_and_skips_an_inactive_tenant(world):
    """The task a worker runs (outside any transaction: each batch commits on its own):
    the tenant's old rows are gone for a fresh connection too, the next round is to start
    after it, and an inactive tenant's rows are left."""
    a, b = world.a, world.b
    logs = world_of_logs(a)
    theirs = world_of_logs(b)
    cache.delete(_cursor_key(log_retention.log_retention.name))
    b.tenant.is_active = False
    b.tenant.save(update_fields=["is_active"])

    done = log_retention.log_retention(a.tenant.pk)
    assert done["events"] == 1 and done["automation.runs"] == 2
    assert log_retention.log_retention(b.tenant.pk) is None
    assert cache.get(_cursor_key(log_retention.log_retention.name)) == a.tenant.pk
    connection.close()  # what another process would see: committed rows only
    assert left(a, Run, logs["runs"].values()) == {
        logs["runs"]["young"].pk,
        logs["runs"]["young_other_rule"].pk,
    }
    assert left(b, Run, theirs["runs"].values()) == {r.pk for r in theirs["runs"].values()}


# Enough rows that the planner prices a whole tenant's range as what it is (a test table
# of a few rows is read whole whatever the indexes): every table of the job at 20,000
# rows a tenant over the last 416 days (40,000 events), a clock for each event of the
# last 180 days (older ones are gone by then).
VOLUME = """
INSERT INTO crm_outboxevent
    (tenant_id, public_id, kind, object_type, object_id, key, data, at, depth, processed_at)
SELECT %(tenant)s, gen_random_uuid(), 'ticket.opened', 'service_feedback.ticket', n,
       'customer:' || n %% 500, '{}', now() - n * interval '15 minutes', 0, now()
FROM generate_series(1, 2 * %(rows)s) AS n;
INSERT INTO automation_run
    (tenant_id, public_id, rule_id, kind, subject, at, "values", matched, outcome, detail)
SELECT %(tenant)s, gen_random_uuid(), %(rule)s, 'ticket.opened', 'customer:' || n %% 500,
       now() - n * interval '30 minutes', '{}', true, 'fired', ''
FROM generate_series(1, %(rows)s) AS n;
INSERT INTO automation_miss (tenant_id, public_id, kind, key, object, at, rules, counts)
SELECT %(tenant)s, gen_random_uuid(), 'ticket.opened', 'customer:' || n %% 500,
       'ticket:' || n, now() - n * interval '30 minutes', ARRAY[%(rule)s], ARRAY[NULL::int]
FROM generate_series(1, %(rows)s) AS n;
INSERT INTO automation_due (tenant_id, public_id, rule_id, event_id, subject, due_at, done_at)
SELECT tenant_id, gen_random_uuid(), %(rule)s, id, key, at, at FROM crm_outboxevent
WHERE tenant_id = %(tenant)s AND object_type = 'service_feedback.ticket'
  AND at > now() - interval '180 days';
INSERT INTO automation_webhookcall
    (tenant_id, public_id, rule_id, subject, url, body, status, attempts, last_error,
     created_at)
SELECT %(tenant)s, gen_random_uuid(), %(rule)s, 'customer:' || n %% 500,
       'https://hooks.example.com/crm', '{}', 'sent', 1, '', now() - n * interval '30 minutes'
FROM generate_series(1, %(rows)s) AS n;
INSERT INTO automation_firing (tenant_id, public_id, rule_id, subject, "window", at)
SELECT %(tenant)s, gen_random_uuid(), %(rule)s, 'customer:' || n %% 500, -n,
       now() - n * interval '30 minutes'
FROM generate_series(1, %(rows)s) AS n;
"""
TABLES = {
    "crm_outboxevent",
    "automation_run",
    "automation_miss",
    "automation_due",
    "automation_webhookcall",
    "automation_firing",
}


@pytest.mark.django_db(transaction=True)
def test_every_delete_is_found_through_an_index(world):
    """EXPLAIN of each statement the job ran over 20,000 rows a table and tenant, with their
    statistics and sequential scans priced out: none reads a whole table, and every index
    it reads is searched on more than the tenant (a range of rows, not the tenant's all;
    the look-ups of distinct rules and kinds read one index entry a value).
    docs/automation.md, "Retention", has the plans."""
    a = world.a
    world_of_logs(a)
    for side in (a, world.b):
        with tenant_context(side.tenant), connection.cursor() as cursor:
            volume_rule = rule(side, name="大量", to_role="manager")
            cursor.execute(
                VOLUME, {"tenant": side.tenant.pk, "rule": volume_rule.pk, "rows": 20_000}
            )
    # Statistics as autovacuum would gather them (ANALYZE needs the tables' owner).
    owner = django_settings.DATABASES.get("owner", django_settings.DATABASES["default"])
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=owner["USER"],
        password=owner["PASSWORD"] or None,
        host=owner["HOST"],
        port=owner["PORT"] or None,
        autocommit=True,
    ) as analyzing:
        analyzing.execute(f"ANALYZE {', '.join(sorted(TABLES))}")

    # Batches small beside the tables, as 10,000 rows are beside a real tenant's months of
    # clocks and calls (an event's references are then probed, not read whole).
    with CaptureQueriesContext(connection) as queries:
        done = log_retention.prune(a.tenant, batch=100)
    # 40,000 events over 416 days: those of the last 16 deleted; of the other tables'
    # 20,000 rows, those older than 180 days (2 for the dedup rows, a day's cool-down).
    assert 1_400 < done["events"] < 1_700 and 11_000 < done["automation.runs"] < 11_500
    assert 19_800 < done["automation.firings"] < 20_000
    ours = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().startswith(("DELETE", "WITH"))
    ]
    assert {t for t in TABLES if any(f"DELETE FROM {t}" in sql for sql in ours)} == TABLES
    tenant_only = re.compile(r"Index Cond: \(tenant_id = \d+\)$")
    with tenant_context(a.tenant), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in ours:
            cursor.execute("EXPLAIN " + sql)
            plan = [row[0].strip() for row in cursor.fetchall()]
            assert not [line for line in plan if "Seq Scan" in line], (sql, plan)
            if not sql.lstrip().startswith("WITH RECURSIVE"):
                assert not [line for line in plan if tenant_only.search(line)], (sql, plan)
