"""Activity bench: the nightly lead activity index (F41, leads.activity.compute) of a
tenant of --leads leads (default 200,000), first run and second (idempotent) run.

    DATABASE_URL=postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_activity \\
    DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/crm_bench_activity \\
    .venv/bin/python bench/activity.py [--leads 200000] [--explain]

Fills tenant `bench-activity` (once: a tenant that has leads already is used as it is)
with 50 reps and, by INSERT … SELECT over generate_series as the tables' owner
(deterministic: setseed): one customer per 4 leads with 2 contacts each (roles cycling
through none and the five decision-chain roles); leads over the last 180 days, of every
20 one in the pool, 2 invalid, 8 valid (with a customer and its first contact) and 9
assigned; 3 timeline entries per lead (received, then two at random moments of its
life); 2 follow-ups per open lead by its owner in the last 60 days (on the lead and its
customer, with its contact, 3 in 10 recording a role reached).

Then it times `leads.activity.compute.compute(tenant)` for today as the app role (RLS on,
as the nightly job runs), twice: the second run replaces the day's rows; the reference
workload is sampled before, between and after (how busy the machine was). `--explain` adds
EXPLAIN (ANALYZE, BUFFERS) of the scoring statement (run in a transaction rolled back).
JSON on stdout, progress on stderr; see bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The bench's own modules are named like the project's apps (customers.py, health.py):
# the project must win those imports, `common` stays importable from here.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from common import (  # noqa: E402
    Reference,
    emit,
    log,
    prepare_database,
    setup_django,
    vacuum_analyze,
)

REPS = 50
DAYS = 180
SLUG = "bench-activity"
TABLES = (
    "customers_customer",
    "customers_contact",
    "leads_lead",
    "leads_leadevent",
    "customers_interaction",
    "leads_leadactivity",
)
ROLES = ("", "purchasing", "technical", "user", "decision_maker", "finance")


def ensure_tenant():
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role, Tenant
    from crm.tenancy import tenant_context
    from customers.models import PresetKind
    from customers.services import presets
    from leads.models import Channel, ChannelType

    tenant, _ = Tenant.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench 活跃度", "timezone": "Asia/Shanghai"}
    )
    User = get_user_model()
    reps = []
    with tenant_context(tenant):
        for n in range(1, REPS + 1):
            user, _ = User.objects.get_or_create(username=f"{SLUG}-rep{n:02d}")
            member, _ = Membership.objects.get_or_create(
                tenant=tenant, user=user, defaults={"role": Role.REP}
            )
            reps.append(member.pk)
        channel, _ = Channel.objects.get_or_create(
            tenant=tenant, name="bench 官网表单", defaults={"type": ChannelType.WEB_FORM}
        )
        action = presets(PresetKind.ACTION).first()
    return tenant, reps, channel.pk, action.pk


_FILL = [
    # customers: one per 4 leads
    """
    INSERT INTO customers_customer (tenant_id, public_id, name, name_key, level, industry,
        province, city, created_at, code, owner_id)
    SELECT %(t)s, gen_random_uuid(), 'bench客户' || g, 'bench客户' || g, 'B', '', '', '',
           %(end)s - interval '200 days', '', (%(reps)s::bigint[])[1 + g %% %(n_reps)s]
    FROM generate_series(1, %(customers)s) g
    """,
    # contacts: two per customer
    """
    INSERT INTO customers_contact (tenant_id, public_id, customer_id, name, phone, phone_key,
        email, title, role, created_at)
    SELECT %(t)s, gen_random_uuid(), c.id, '联系人', '', '', '', '',
           (%(roles)s::text[])[1 + (c.id * 2 + k) %% 6], c.created_at
    FROM customers_customer c CROSS JOIN generate_series(0, 1) k
    WHERE c.tenant_id = %(t)s
    """,
    # leads: 1 in 20 in the pool, 2 invalid, 8 valid (customer and contact), 9 assigned
    """
    WITH c AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n FROM customers_customer
        WHERE tenant_id = %(t)s
    ), fc AS (
        SELECT customer_id, min(id) AS contact_id FROM customers_contact
        WHERE tenant_id = %(t)s GROUP BY customer_id
    ), g AS (
        SELECT g, g %% 20 AS r,
               %(end)s - (random() * %(days)s) * interval '1 day' AS created
        FROM generate_series(1, %(leads)s) g
    )
    INSERT INTO leads_lead (tenant_id, public_id, company, contact_name, phone, industry,
        message, industry_remark, email, title, province, city, budget, external_id, utm,
        source_grade, status, is_suspect, suspect_reasons, registry_status, phone_key,
        company_key, contact_key, created_at, channel_id, dispatch_round, pool_reason,
        touch_count, verification, intake_issues, owner_id, assigned_at, customer_id,
        contact_id, verified_at)
    SELECT %(t)s, gen_random_uuid(), 'bench公司' || g.g, '王工', '', '', '', '', '', '', '',
           '', '', '', '{}'::jsonb, 'B',
           CASE WHEN g.r = 0 THEN 'new' WHEN g.r IN (1, 2) THEN 'invalid'
                WHEN g.r BETWEEN 3 AND 10 THEN 'valid' ELSE 'assigned' END,
           false, '[]'::jsonb, '', '', '', '', g.created, %(channel)s, 1, '', 1,
           CASE WHEN g.r IN (1, 2) THEN 'invalid_not_target'
                WHEN g.r BETWEEN 3 AND 10 THEN 'valid_visit' ELSE '' END,
           '[]'::jsonb,
           CASE WHEN g.r = 0 THEN NULL ELSE (%(reps)s::bigint[])[1 + g.g %% %(n_reps)s] END,
           CASE WHEN g.r = 0 THEN NULL ELSE g.created + interval '5 minutes' END,
           CASE WHEN g.r BETWEEN 3 AND 10 THEN c.id END,
           CASE WHEN g.r BETWEEN 3 AND 10 THEN fc.contact_id END,
           CASE WHEN g.r BETWEEN 1 AND 10 THEN g.created + interval '2 hours' END
    FROM g
    JOIN c ON c.n = 1 + g.g %% %(customers)s
    LEFT JOIN fc ON fc.customer_id = c.id
    """,
    # timeline: received, and two moments of the lead's life
    """
    INSERT INTO leads_leadevent (tenant_id, public_id, kind, at, message, data, lead_id)
    SELECT %(t)s, gen_random_uuid(), CASE WHEN k = 0 THEN 'intake' ELSE 'touch' END,
           CASE WHEN k = 0 THEN l.created_at
                ELSE l.created_at + random() * (%(end)s - l.created_at) END,
           '', '{}'::jsonb, l.id
    FROM leads_lead l CROSS JOIN generate_series(0, 2) k
    WHERE l.tenant_id = %(t)s
    """,
    # follow-ups: two per open lead by its owner, in the last 60 days
    """
    INSERT INTO customers_interaction (tenant_id, public_id, kind, lead_id, customer_id,
        contact_id, by_id, at, channel, talk_tags, pains, roles, note, next_action_id,
        next_action_due, next_done_at, suggested_status, closes_loop)
    SELECT %(t)s, gen_random_uuid(), 'follow_up', l.id, l.customer_id, l.contact_id,
           l.owner_id, x.at, 'phone', '[]'::jsonb, '[]'::jsonb,
           CASE WHEN random() < 0.3 THEN '["technical"]'::jsonb ELSE '[]'::jsonb END,
           '', %(action)s, x.at::date, x.at + interval '1 day', '', false
    FROM leads_lead l
    CROSS JOIN generate_series(1, 2) k
    CROSS JOIN LATERAL (
        SELECT greatest(l.created_at, %(end)s - random() * interval '60 days') AS at
    ) x
    WHERE l.tenant_id = %(t)s AND l.owner_id IS NOT NULL AND l.status IN ('assigned', 'valid')
    """,
]


def fill(tenant, reps, channel, action, leads: int) -> dict:
    from django.db import connections

    end = datetime.now(UTC) - timedelta(hours=1)
    params = {
        "t": tenant.pk,
        "reps": reps,
        "n_reps": len(reps),
        "roles": list(ROLES),
        "channel": channel,
        "action": action,
        "leads": leads,
        "customers": max(1, leads // 4),
        "days": DAYS,
        "end": end,
    }
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_lead WHERE tenant_id = %s", [tenant.pk])
        if cursor.fetchone()[0]:
            log("the tenant has leads: used as it is")
            return {}
        cursor.execute("SELECT setseed(0.2026)")
        took = {}
        for sql, name in zip(
            _FILL, ("customers", "contacts", "leads", "events", "follow-ups"), strict=True
        ):
            started = time.perf_counter()
            cursor.execute(sql, params)
            took[name] = {"rows": cursor.rowcount, "s": round(time.perf_counter() - started, 1)}
            log(f"{name}: {cursor.rowcount} rows in {took[name]['s']} s")
    return took


def counts(tenant) -> dict:
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        out = {}
        for table in TABLES[:-1]:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant.pk])  # noqa: S608
            out[table] = cursor.fetchone()[0]
    return out


def run(tenant) -> dict:
    from crm.tenancy import tenant_context
    from leads.activity import compute

    started = time.perf_counter()
    with tenant_context(tenant):
        result = compute.compute(tenant)
    wall = time.perf_counter() - started
    return {**result.as_dict(), "wall_s": round(wall, 2)}


def explain(tenant) -> list[str]:
    from django.db import connection, transaction

    from crm.tenancy import tenant_context
    from leads.activity import compute

    day = compute.local_today(tenant)
    sql, params = compute.statement(tenant, day)
    with tenant_context(tenant), connection.cursor() as cursor:
        sid = transaction.savepoint()
        cursor.execute(
            "DELETE FROM leads_leadactivity WHERE tenant_id = %s AND day = %s", [tenant.pk, day]
        )
        with compute._planner(cursor):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
        transaction.savepoint_rollback(sid)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault(
        "DATABASE_URL", "postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_activity"
    )
    os.environ.setdefault(
        "DATABASE_OWNER_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_activity"
    )
    setup_django()
    prepare_database()
    tenant, reps, channel, action = ensure_tenant()
    loaded = fill(tenant, reps, channel, action, args.leads)
    log("vacuum analyze")
    vacuum_analyze(*TABLES)
    # The reference workload around the runs says how busy the machine was (README).
    reference = Reference()
    reference.sample(5)
    log("first run")
    first = run(tenant)
    log(f"first run: {first}")
    reference.sample(5)
    second = run(tenant)
    log(f"second run: {second}")
    reference.sample(5)
    results = {
        "tenant": SLUG,
        "rows": counts(tenant),
        "loaded": loaded,
        "first_run": first,
        "second_run": second,
        "reference": reference.report(),
    }
    if args.explain:
        results["explain"] = explain(tenant)
    emit(results)


if __name__ == "__main__":
    main()
