"""Ten thousand tenants on one database (issue 19, item 4).

    DATABASE_URL=postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_tenants \\
    DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/crm_bench_tenants \\
    .venv/bin/python bench/tenants.py [--sizes 10,1000,10000] [--requests 30]

Grows the database to each size of --sizes in turn (idempotent: tenants `bt-00001` …
are added only when missing, 1,000 to a transaction, by `INSERT … SELECT` over
`generate_series` on the owner's connection) and measures at each size:

- `login`: the sign-in form POSTed (the password checked, the tenant chosen), as a rep
  of a tenant picked at random;
- `home`: the home page of a manager (the dashboard it redirects to) and of a rep (their
  daily board), `common.measure` (in-process, the whole middleware stack);
- `sla_sweep`: the per-minute SLA sweep as beat and one worker run it
  (`leads.sla_sweep_all`, the fan-out, then every per-tenant `leads.sla_sweep` it
  queued, run one after the other in this process as a single worker would): the first
  (a day of clocks to catch up with) and the second, the steady state of every minute;
- `redrive`: the inbox re-drive (`leads.redrive_inbound_events`), with 100 processed
  events per tenant and 10 tenants with a stale one;
- `report_rollup`: the lead-quality roll-up (`leads.report_rollup_all`, every 5 minutes)
  with its tasks: the first (every tenant's day pending) and the second (nothing pending);
- `new_tenant` (once, at the end): the platform superuser adds a tenant and its admin's
  seat in the admin, the admin signs in and gets the home page: wall time to that page.

Each tenant: a manager and 5 reps (profiles), a webhook channel, the default SLA policy,
100 leads over the last 24 hours (2 in 10 new and unassigned, 3 assigned and unverified,
1 touched once, 3 valid with no follow-up since, 1 invalid), each with its processed
inbound event, and the report's change marks for the hours of its leads (what the
leads' insert trigger writes; the leads are loaded with the triggers off, so the search
grams are not built: nothing here searches).

The tasks run in this process with Celery's eager mode: the time is the work one worker
would do, without the broker's round trips. JSON to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from common import (
    MODEL_BACKEND,
    Reference,
    emit,
    log,
    measure,
    prepare_database,
    setup_django,
    spread,
    vacuum_analyze,
)

PASSWORD = "bench-tenants-pass-2026"  # noqa: S105 — the bench's own users
LEADS = 100
REPS = 5
CHUNK = 1000
SLUG = "bt-{:05d}"


# --- generation ----------------------------------------------------------------------------


def _columns(model, exprs: dict) -> tuple[list[str], list[str], list]:
    """Columns, SQL expressions and parameters (in column order) of an INSERT … SELECT
    into `model`'s table: `exprs` gives some columns as SQL, or as (SQL, parameters);
    every other non-null column gets its field's default as a parameter (public_id:
    gen_random_uuid() per row)."""
    from django.db import connections

    connection = connections["owner"]
    names, sql, params = [], [], []
    for field in model._meta.concrete_fields:
        column = field.column
        if field.primary_key:
            continue
        if column in exprs:
            expr = exprs[column]
            expr, expr_params = (expr, []) if isinstance(expr, str) else expr
            names.append(column)
            sql.append(expr)
            params.extend(expr_params)
        elif column == "public_id":
            names.append(column)
            sql.append("gen_random_uuid()")
        elif field.has_default() or not field.null:
            # get_default(): the field's default, or "" for a text field without one.
            value = field.get_default()
            if value is None and not field.null:
                raise RuntimeError(f"{model._meta.db_table}.{column}: no value and no default")
            names.append(column)
            sql.append("%s")
            params.append(field.get_db_prep_save(value, connection))
    return names, sql, params


def insert_select(cursor, model, exprs: dict, tail: str, params: list) -> int:
    names, values, defaults = _columns(model, exprs)
    # The SELECT list's parameters first, then the tail's.
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({', '.join(names)})"
        f" SELECT {', '.join(values)} {tail}",
        defaults + params,
    )
    return cursor.rowcount


def existing() -> int:
    from crm.models import Tenant

    return Tenant.objects.filter(slug__regex=r"^bt-[0-9]{5}$").count()


def grow(upto: int, password_hash: str) -> float:
    """Add tenants bt-(existing+1) … bt-upto, CHUNK to a transaction. Seconds taken."""
    have = existing()
    started = time.perf_counter()
    for first in range(have + 1, upto + 1, CHUNK):
        last = min(first + CHUNK - 1, upto)
        t0 = time.perf_counter()
        add_chunk(first, last, password_hash)
        log(f"tenants {first}…{last}: {time.perf_counter() - t0:.1f} s")
    if upto > have:
        vacuum_analyze(
            "crm_tenant",
            "auth_user",
            "crm_membership",
            "leads_repprofile",
            "leads_channel",
            "leads_slapolicy",
            "leads_lead",
            "leads_inboundevent",
            "leads_reportchange",
        )
    return time.perf_counter() - started


def add_chunk(first: int, last: int, password_hash: str) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connections, transaction

    from crm.models import Membership, Tenant
    from leads.models import Channel, InboundEvent, Industry, Lead, RepProfile, SlaPolicy

    User = get_user_model()
    rng = [first, last]
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cur:
        insert_select(
            cur,
            Tenant,
            {
                "name": "'Bench 租户 ' || g",
                "slug": "'bt-' || lpad(g::text, 5, '0')",
                "timezone": "'Asia/Shanghai'",
                "created_at": "now() - interval '30 days'",
            },
            "FROM generate_series(%s, %s) g",
            rng,
        )
        cur.execute(
            "CREATE TEMP TABLE bt_map ON COMMIT DROP AS"
            " SELECT id AS tenant_id, substr(slug, 4)::int AS g FROM crm_tenant"
            " WHERE slug ~ '^bt-[0-9]{5}$' AND substr(slug, 4)::int BETWEEN %s AND %s",
            rng,
        )
        # r = 0: the manager; 1 … REPS: the reps.
        insert_select(
            cur,
            User,
            {
                "password": ("%s", [password_hash]),
                "username": "'bt-' || lpad(m.g::text, 5, '0') || '-' || r",
                "date_joined": "now() - interval '30 days'",
            },
            "FROM bt_map m, generate_series(0, %s) r",
            [REPS],
        )
        insert_select(
            cur,
            Membership,
            {
                "user_id": "u.id",
                "tenant_id": "m.tenant_id",
                "role": "CASE WHEN r = 0 THEN 'manager' ELSE 'rep' END",
                "created_at": "now() - interval '30 days'",
            },
            "FROM bt_map m CROSS JOIN generate_series(0, %s) r"
            " JOIN auth_user u ON u.username = 'bt-' || lpad(m.g::text, 5, '0') || '-' || r",
            [REPS],
        )
        cur.execute(
            "CREATE TEMP TABLE bt_seat ON COMMIT DROP AS"
            " SELECT s.tenant_id, s.id AS seat, substr(u.username, 10)::int AS r"
            " FROM crm_membership s JOIN auth_user u ON u.id = s.user_id"
            " JOIN bt_map m ON m.tenant_id = s.tenant_id"
        )
        cur.execute("CREATE INDEX ON bt_seat (tenant_id, r)")
        insert_select(
            cur,
            RepProfile,
            {
                "membership_id": "s.seat",
                "tenant_id": "s.tenant_id",
                "provinces": "'[\"江苏省\"]'::jsonb",
                "industries": "'[]'::jsonb",
                "cities": "'[]'::jsonb",
                "product_lines": "'[]'::jsonb",
                "created_at": "now() - interval '30 days'",
            },
            "FROM bt_seat s WHERE s.r > 0",
            [],
        )
        insert_select(
            cur,
            Channel,
            {
                "tenant_id": "m.tenant_id",
                "name": "'官网表单'",
                "type": "'web_form'",
                "key": "md5(random()::text || m.g)",
                "secret": "md5(random()::text)",
                "created_at": "now() - interval '30 days'",
            },
            "FROM bt_map m",
            [],
        )
        insert_select(cur, SlaPolicy, {"tenant_id": "m.tenant_id"}, "FROM bt_map m", [])
        # The leads and their events with the triggers off (no search grams; the report's
        # change marks are written below as the trigger would).
        cur.execute("SET LOCAL session_replication_role = replica")
        industry = Industry.values[0]
        # i: 0 newest … 99 about 24 hours old; i % 10 decides the lead's state.
        created = "now() - (i * interval '14 minutes 24 seconds') - interval '1 minute'"
        assigned = f"CASE WHEN i %% 10 >= 2 THEN {created} + interval '1 minute' END"
        touched = f"CASE WHEN i %% 10 >= 5 THEN {assigned} + interval '10 minutes' END"
        insert_select(
            cur,
            Lead,
            {
                "tenant_id": "m.tenant_id",
                "channel_id": "c.id",
                "company": "'Bench 公司 ' || m.g || '-' || i",
                "contact_name": "'联系人' || i",
                "phone": "'139' || lpad((m.g * 100 + i)::text, 8, '0')",
                "industry": ("%s", [industry]),
                "source_grade": "CASE WHEN i %% 5 = 0 THEN 'A' ELSE 'B' END",
                "status": (
                    "CASE WHEN i %% 10 < 2 THEN 'new' WHEN i %% 10 < 6 THEN 'assigned'"
                    " WHEN i %% 10 < 9 THEN 'valid' ELSE 'invalid' END"
                ),
                "created_at": created,
                "owner_id": "CASE WHEN i %% 10 >= 2 THEN s.seat END",
                "assigned_at": assigned,
                "first_touch_at": touched,
                "last_touch_at": touched,
                "touch_count": "CASE WHEN i %% 10 = 5 THEN 1 WHEN i %% 10 > 5 THEN 2 ELSE 0 END",
                "verified_at": f"CASE WHEN i %% 10 >= 6 THEN {assigned} + interval '20 minutes'"
                " END",
                "verification": (
                    "CASE WHEN i %% 10 BETWEEN 6 AND 8 THEN 'valid_more_info'"
                    " WHEN i %% 10 = 9 THEN 'invalid_not_target' ELSE '' END"
                ),
            },
            "FROM bt_map m JOIN leads_channel c ON c.tenant_id = m.tenant_id"
            " CROSS JOIN generate_series(0, %s) i"
            " JOIN bt_seat s ON s.tenant_id = m.tenant_id AND s.r = 1 + i %% %s",
            [LEADS - 1, REPS],
        )
        insert_select(
            cur,
            InboundEvent,
            {
                "tenant_id": "l.tenant_id",
                "channel_id": "l.channel_id",
                "source": "'webhook'",
                "received_at": "l.created_at",
                "raw_body": "'{}'",
                "body_sha256": "md5(l.id::text)",
                "payload": "jsonb_build_object('company', l.company)",
                "status": "'processed'",
                "processed_at": "l.created_at",
                "lead_id": "l.id",
            },
            "FROM leads_lead l JOIN bt_map m ON m.tenant_id = l.tenant_id",
            [],
        )
        cur.execute("SET LOCAL session_replication_role = origin")
        insert_select(
            cur,
            _model("leads", "ReportChange"),
            {"tenant_id": "h.tenant_id", "hour": "h.hour"},
            "FROM (SELECT DISTINCT l.tenant_id, date_trunc('hour', l.created_at) AS hour"
            " FROM leads_lead l JOIN bt_map m ON m.tenant_id = l.tenant_id) h",
            [],
        )


def _model(app: str, name: str):
    from django.apps import apps

    return apps.get_model(app, name)


def stale_events(tenants: int = 10) -> int:
    """Make one event of `tenants` tenants stale (`received` 5 minutes ago), as lost broker
    messages would leave them: what the re-drive finds."""
    from django.db import connections

    with connections["owner"].cursor() as cur:
        cur.execute(
            "UPDATE leads_inboundevent SET status = 'received', processed_at = NULL,"
            " received_at = now() - interval '5 minutes'"
            " WHERE id IN (SELECT min(e.id) FROM leads_inboundevent e"
            "  JOIN crm_tenant t ON t.id = e.tenant_id AND t.slug ~ '^bt-[0-9]{5}$'"
            "  GROUP BY e.tenant_id ORDER BY e.tenant_id DESC LIMIT %s)",
            [tenants],
        )
        return cur.rowcount


def catch_up() -> dict:
    """The state a day of per-minute sweeps and 5-minute roll-ups would have left, written
    by SQL where the real first runs would take too long at this size (--first-max): the
    SLA alerts of every clock that passed over a minute ago (a day of these leads' clocks
    passes two thresholds only: A-class unassigned after 30 minutes, unassigned after 120,
    the default policy's; their notifications and timeline entries are not written), and
    the roll-up change marks drained but those of 5 minutes of traffic."""
    from django.db import connections

    with connections["owner"].cursor() as cur:
        alerts = 0
        for threshold, minutes, grade in (
            ("a_unassigned", 30, "AND l.source_grade = 'A'"),
            ("unassigned", 120, ""),
        ):
            cur.execute(
                "INSERT INTO leads_slaalert"  # noqa: S608 — our own fixed fragments
                " (tenant_id, public_id, lead_id, threshold, round, fired_at)"
                " SELECT l.tenant_id, gen_random_uuid(), l.id, %s, l.dispatch_round, now()"
                " FROM leads_lead l JOIN crm_tenant t ON t.id = l.tenant_id"
                " AND t.slug ~ '^bt-[0-9]{5}$'"
                " WHERE l.status = 'new' AND l.owner_id IS NULL AND l.dispatch_round = 0"
                f" AND l.created_at <= now() - make_interval(mins => %s + 1) {grade}"
                " ON CONFLICT DO NOTHING",
                [threshold, minutes],
            )
            alerts += cur.rowcount
        # A minute of traffic: 100 leads a day a tenant pass about 1,400 thresholds a
        # minute over 10,000 tenants; here one clock passes in 1 tenant of 14 (the newest
        # unassigned alert of those tenants removed: their sweep fires it again).
        cur.execute(
            "DELETE FROM leads_slaalert WHERE id IN (SELECT DISTINCT ON (a.tenant_id) a.id"
            " FROM leads_slaalert a JOIN crm_tenant t ON t.id = a.tenant_id"
            " AND t.slug ~ '^bt-[0-9]{5}$' AND substr(t.slug, 4)::int %% 14 = 0"
            " WHERE a.threshold = 'unassigned' ORDER BY a.tenant_id, a.id DESC)",
            [],
        )
        due_again = cur.rowcount
        # Every mark drained, then this hour's for the tenants that had a lead in the last
        # 5 minutes at this traffic: 100 leads a day is one every 14.4 minutes, so 5 of
        # 14.4, about 35 % of the tenants (those whose number is 0-6 modulo 20).
        cur.execute(
            "DELETE FROM leads_reportchange c USING crm_tenant t"
            " WHERE t.id = c.tenant_id AND t.slug ~ '^bt-[0-9]{5}$'"
        )
        drained = cur.rowcount
        cur.execute(
            "INSERT INTO leads_reportchange (tenant_id, public_id, hour)"
            " SELECT t.id, gen_random_uuid(), date_trunc('hour', now()) FROM crm_tenant t"
            " WHERE t.slug ~ '^bt-[0-9]{5}$' AND substr(t.slug, 4)::int %% 20 < 7",
            [],
        )
        cur.execute("SELECT count(DISTINCT tenant_id) FROM leads_reportchange")
        pending = cur.fetchone()[0]
    vacuum_analyze("leads_slaalert", "leads_reportchange")
    return {
        "alerts_written": alerts,
        "tenants_with_a_clock_due": due_again,
        "marks_drained": drained,
        "tenants_with_marks": pending,
    }


# --- measuring -----------------------------------------------------------------------------


class Counted:
    """Counts the tasks queued while it is active (eager mode runs them on the spot)."""

    def __init__(self):
        from celery.signals import before_task_publish, task_prerun

        self.queued = 0
        self.ran = 0
        before_task_publish.connect(self._queued, weak=False)
        task_prerun.connect(self._ran, weak=False)

    def _queued(self, **kwargs):
        self.queued += 1

    def _ran(self, **kwargs):
        self.ran += 1

    def reset(self) -> None:
        self.queued = self.ran = 0


def run_job(label: str, func, counter: Counted, *args, **kwargs) -> dict:
    """One beat job and every task it queues, as one worker would run them (eagerly, in
    this process), with the machine's reference workload just before and after."""
    from django.db import connection

    ref = Reference()
    ref.sample(3)
    counter.reset()
    statements = [0]

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    started = time.perf_counter()
    with connection.execute_wrapper(count):
        result = func.apply(args=args, kwargs=kwargs).get()
    seconds = time.perf_counter() - started
    ref.sample(3)
    out = {
        "seconds": round(seconds, 3),
        "fan_out_result": result if isinstance(result, int) else str(result),
        "tasks_run": counter.ran,
        "queries": statements[0],
        "reference": ref.report(),
    }
    log(f"    {label}: {out['seconds']} s, {counter.ran} task(s)")
    return out


def login_times(tenants: int, n: int) -> dict:
    """n sign-ins (POST of the login form, password checked, tenant chosen, redirect), each
    as a rep of a random tenant; a fresh client each time."""
    from django.test import Client

    rnd = random.Random(tenants)
    times = []
    for _ in range(n):
        user = f"{SLUG.format(rnd.randint(1, tenants))}-{rnd.randint(1, REPS)}"
        client = Client()
        started = time.perf_counter()
        response = client.post("/accounts/login/", {"username": user, "password": PASSWORD})
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 302:
            raise RuntimeError(f"login of {user}: {response.status_code}")
    return spread(times)


def home_pages(tenants: int, n: int) -> dict:
    """The home page of a manager and of a rep of the middle tenant: `/` redirects each
    to their role's home (the dashboard, the board), which is measured."""
    from django.test import Client

    from crm.models import Membership

    slug = SLUG.format(max(1, tenants // 2))
    out = {}
    for label, role in (("manager", "manager"), ("rep", "rep")):
        seat = (
            Membership.objects.using("owner")  # read before any tenant is chosen
            .select_related("user", "tenant")
            .filter(tenant__slug=slug, role=role)
            .order_by("pk")
            .first()
        )
        client = Client()
        client.force_login(seat.user, backend=MODEL_BACKEND)
        session = client.session
        session["crm_tenant_id"] = seat.tenant_id
        session.save()
        target = client.get("/").headers.get("Location", "/")
        page = measure(target, membership=seat, n=n, warmup=3)
        page["path"] = target
        out[label] = page
    return out


def new_tenant(stamp: str) -> dict:
    """The platform superuser adds a tenant and its admin's seat in the admin; the new
    admin opens the home page: `ready_ms`, from the first POST to that page, with the
    admin's session made directly (force_login), and `login_ms`, the admin's own sign-in
    with the password, a fixed cost of the password hash (PBKDF2) that no tenant count
    changes, measured apart."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from crm.models import Membership, Tenant

    User = get_user_model()
    root, _ = User.objects.get_or_create(
        username="bt-platform", defaults={"is_superuser": True, "is_staff": True}
    )
    admin_user = User.objects.create_user(f"bt-new-admin-{stamp}", password=PASSWORD)
    platform = Client()
    platform.force_login(root, backend=MODEL_BACKEND)
    platform.get("/admin/crm/tenant/add/")  # the platform admin's page open, as in use
    steps = {}
    started = time.perf_counter()
    response = platform.post(
        "/admin/crm/tenant/add/",
        {
            "name": f"新租户 {stamp}",
            "slug": f"btnew-{stamp}",
            "timezone": "Asia/Shanghai",
            "is_active": "on",
        },
    )
    steps["tenant_added_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if response.status_code != 302:
        raise RuntimeError(f"tenant add: {response.status_code}")
    tenant = Tenant.objects.get(slug=f"btnew-{stamp}")
    t1 = time.perf_counter()
    response = platform.post(
        "/admin/crm/membership/add/",
        {
            "tenant": tenant.pk,
            "user": admin_user.pk,
            "role": "admin",
            "is_active": "on",
            "phone": "",
        },
    )
    steps["seat_added_ms"] = round((time.perf_counter() - t1) * 1000, 1)
    if (
        response.status_code != 302
        or not Membership.objects.using("owner").filter(user=admin_user).exists()
    ):
        errors = response.context["adminform"].form.errors if response.context else None
        raise RuntimeError(f"seat add: {response.status_code} {errors}")
    t2 = time.perf_counter()
    client = Client()
    client.force_login(admin_user, backend=MODEL_BACKEND)
    response = client.get("/", follow=True)
    steps["home_ms"] = round((time.perf_counter() - t2) * 1000, 1)
    if response.status_code != 200:
        raise RuntimeError(f"new admin's home: {response.status_code}")
    steps["ready_ms"] = round((time.perf_counter() - started) * 1000, 1)
    t3 = time.perf_counter()
    response = Client().post(
        "/accounts/login/", {"username": admin_user.username, "password": PASSWORD}
    )
    if response.status_code != 302:
        raise RuntimeError(f"new admin's login: {response.status_code}")
    steps["login_ms"] = round((time.perf_counter() - t3) * 1000, 1)
    return steps


def new_tenants(n: int) -> dict:
    """`new_tenant` n times: each step's median, and every run."""
    base = int(time.time())
    runs = [new_tenant(f"{base}-{i}") for i in range(n)]
    return {
        "n": n,
        **{f"{key}_median": statistics.median(r[key] for r in runs) for key in runs[0]},
        "ready_ms_max": max(r["ready_ms"] for r in runs),
        "runs": runs,
    }


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000", help="tenant counts, ascending")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--logins", type=int, default=10, help="timed sign-ins per size")
    parser.add_argument("--new-tenants", type=int, default=5, help="tenants created at the end")
    parser.add_argument("--skip-pages", action="store_true", help="no login and home pages")
    parser.add_argument(
        "--first-max",
        type=int,
        default=1000,
        help="up to this size the first SLA sweep and roll-up run for real; above, catch_up()",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import logging

    os.environ.setdefault("EMAIL_URL", "dummymail://")
    setup_django()
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    prepare_database()

    from django.contrib.auth.hashers import make_password

    from crm.celery import app
    from leads import tasks

    app.conf.task_always_eager = True
    counter = Counted()
    password_hash = make_password(PASSWORD)
    results = []
    for size in sizes:
        log(f"size {size}")
        generated = grow(size, password_hash)
        stale = stale_events()
        row = {"tenants": size, "generated_seconds": round(generated, 1)}
        if not args.skip_pages:
            row["login"] = login_times(size, args.logins)
            row["home"] = home_pages(size, args.requests)
        if size <= args.first_max:
            row["sla_sweep_first"] = run_job("SLA sweep, first", tasks.sla_sweep_all, counter)
            row["report_rollup_first"] = run_job("roll-up, first", tasks.report_rollup_all, counter)
        else:
            row["caught_up_by_sql"] = catch_up()
        row["sla_sweep"] = run_job("SLA sweep, steady", tasks.sla_sweep_all, counter)
        row["sla_sweep_again"] = run_job("SLA sweep, steady", tasks.sla_sweep_all, counter)
        row["redrive"] = run_job("re-drive", tasks.redrive_inbound_events, counter)
        row["redrive"]["stale_events"] = stale
        row["report_rollup"] = run_job("roll-up, steady", tasks.report_rollup_all, counter)
        results.append(row)
        log(json.dumps({k: v for k, v in row.items() if k == "tenants"}))
    ready = new_tenants(args.new_tenants)
    summary = {
        "login_median_ms": {r["tenants"]: r["login"]["median_ms"] for r in results if "login" in r},
        "home_manager_median_ms": {
            r["tenants"]: r["home"]["manager"]["median_ms"] for r in results if "home" in r
        },
        "home_rep_median_ms": {
            r["tenants"]: r["home"]["rep"]["median_ms"] for r in results if "home" in r
        },
        "sla_sweep_s": {r["tenants"]: r["sla_sweep"]["seconds"] for r in results},
        "redrive_s": {r["tenants"]: r["redrive"]["seconds"] for r in results},
        "report_rollup_s": {r["tenants"]: r["report_rollup"]["seconds"] for r in results},
        "new_tenant_ready_ms_median": ready["ready_ms_median"],
        "new_tenant_ready_ms_max": ready["ready_ms_max"],
    }
    emit(
        {
            "bench": "tenants",
            "summary": summary,
            "sizes": results,
            "new_tenant": ready,
            "intervals_s": {"sla_sweep": 60, "redrive": 60, "report_rollup": 300},
            "median_of_reference_ms": statistics.median(
                r["sla_sweep"]["reference"]["median_ms"] for r in results
            ),
        }
    )


if __name__ == "__main__":
    main()
