"""Risk list bench: /health/risk/ (sorts, filters, a deep page) and the board's section, in a
tenant with --customers customers scored on one day and --entries of them on the list.

    .venv/bin/python bench/health_risk.py --customers 300000 --entries 100000 [--explain]

Fills tenant `bench-risk` once (by SQL, as the owner): 20 reps, the customers (90% owned,
eight provinces), one snapshot each for DAY (scores 0–100, six dimensions' weights), an
open entry for the first --entries customers (scores below 60), a tenth of them done;
then times the pages as the manager (and one rep) and prints JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
from datetime import date

from common import emit, explain, log, measure, prepare_database, setup_django, vacuum_analyze

DAY = date(2026, 11, 30)
REPS = 20
PROVINCES = ["浙江省", "江苏省", "广东省", "上海市", "北京市", "山东省", "湖北省", "四川省"]
PAGES = [
    ("risk", None, "manager"),
    ("risk_as_rep", None, "rep"),
    ("risk_sorted_score", {"sort": "score"}, "manager"),
    ("risk_sorted_score_desc", {"sort": "-score"}, "manager"),
    ("risk_sorted_owner_desc", {"sort": "-owner"}, "manager"),
    ("risk_sorted_owner", {"sort": "owner"}, "manager"),
    ("risk_sorted_entered_asc", {"sort": "entered_on"}, "manager"),
    ("risk_owner", {"owner": "{owner}"}, "manager"),
    ("risk_region", {"region": "江苏"}, "manager"),
    ("risk_deep_page", {"page": 200}, "manager"),
]


def ensure_tenant(slug: str, customers: int, entries: int):
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.utils import timezone

    from crm.models import Membership, Role, Tenant
    from crm.tenancy import tenant_context
    from health.models import HealthSettings

    User = get_user_model()
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": "风险名单基准"})
    with tenant_context(tenant):
        people = {}
        cast = [(Role.MANAGER, "manager"), *[(Role.REP, f"rep{i}") for i in range(REPS)]]
        for role, name in cast:
            user, _ = User.objects.get_or_create(username=f"{slug}-{name}")
            people[name], _ = Membership.objects.get_or_create(
                tenant=tenant, user=user, defaults={"role": role}
            )
        settings = HealthSettings.for_tenant(tenant)
        # As a nightly run leaves it: scored after the settings last changed.
        HealthSettings.objects.filter(pk=settings.pk).update(
            computed_on=DAY, computed_at=timezone.now()
        )
    reps = [people[f"rep{i}"].pk for i in range(REPS)]
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer WHERE tenant_id = %s", [tenant.pk])
        have = cursor.fetchone()[0]
        if have < customers:
            log(f"customers {have} → {customers}")
            cursor.execute(
                """
                INSERT INTO customers_customer (
                    tenant_id, public_id, name, name_key, code, province, city, industry,
                    level, owner_id, created_at, last_contact_at
                )
                SELECT %(t)s, gen_random_uuid(), '客户' || lpad(i::text, 7, '0'),
                       'kh' || lpad(i::text, 7, '0'), '', (%(prov)s::text[])[1 + i %% 8], '',
                       'other', 'C',
                       CASE WHEN i %% 10 = 9 THEN NULL ELSE (%(reps)s::bigint[])[1 + i %% 20] END,
                       now(), now() - (i %% 120) * interval '1 day'
                FROM generate_series(%(lo)s, %(hi)s) i
                """,
                {"t": tenant.pk, "prov": PROVINCES, "reps": reps, "lo": have, "hi": customers - 1},
            )
        cursor.execute(
            "SELECT count(*) FROM health_healthsnapshot WHERE tenant_id = %s AND day = %s",
            [tenant.pk, DAY],
        )
        if cursor.fetchone()[0] == 0:
            log("snapshots")
            cursor.execute(
                """
                INSERT INTO health_healthsnapshot (
                    tenant_id, public_id, customer_id, day, score, coverage, weights,
                    computed_at, recency_value, recency_score
                )
                SELECT c.tenant_id, gen_random_uuid(), c.id, %(day)s,
                       CASE WHEN rn <= %(entries)s THEN (rn * 7919) %% 60
                            ELSE 60 + (rn * 7919) %% 41 END,
                       1 + rn %% 6,
                       '{"recency": 25, "frequency": 20, "service": 20, "downloads": 10,
                         "quotes": 15, "competitor": 10}'::jsonb,
                       now(), 7 + (rn * 31) %% 200, 40
                FROM (SELECT id, tenant_id, row_number() OVER (ORDER BY id) AS rn
                      FROM customers_customer WHERE tenant_id = %(t)s) c
                """,
                {"t": tenant.pk, "day": DAY, "entries": entries},
            )
            log("entries")
            cursor.execute(
                """
                INSERT INTO health_riskentry (
                    tenant_id, public_id, customer_id, owner_id, entered_on, score, weakest,
                    action, done_at
                )
                SELECT c.tenant_id, gen_random_uuid(), c.id, c.owner_id,
                       %(day)s - (rn %% 60)::int, 40, 'frequency', %(action)s,
                       CASE WHEN rn %% 10 = 0 THEN now() END
                FROM (SELECT id, tenant_id, owner_id, row_number() OVER (ORDER BY id) AS rn
                      FROM customers_customer WHERE tenant_id = %(t)s) c
                WHERE rn <= %(entries)s
                """,
                {"t": tenant.pk, "day": DAY, "entries": entries, "action": "定制化技术方案"},
            )
    vacuum_analyze("customers_customer", "health_healthsnapshot", "health_riskentry")
    return tenant, people


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--tenant", default="bench-risk")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    setup_django()
    prepare_database()
    tenant, people = ensure_tenant(args.tenant, args.customers, args.entries)
    results = {"customers": args.customers, "entries": args.entries, "pages": {}}
    for label, params, who in PAGES:
        params = {
            k: (str(people["rep0"].pk) if v == "{owner}" else v) for k, v in (params or {}).items()
        }
        member = people["manager"] if who == "manager" else people["rep0"]
        figures = measure(
            "/health/risk/", membership=member, n=args.requests, params=params,
            keep_sql=args.explain,
        )  # fmt: skip
        if args.explain:
            selects = [q["sql"] for q in figures.pop("sql", []) if q["sql"].startswith("SELECT")]
            figures["plans"] = [explain(sql, tenant=tenant) for sql in selects]
        results["pages"][label] = figures
        log(f"{label}: {figures['median_ms']} ms median, {figures.get('queries')} queries")
    board = measure("/board/", membership=people["rep0"], n=args.requests)
    results["pages"]["board_rep"] = board
    log(f"board: {board['median_ms']} ms median")
    emit(results)


if __name__ == "__main__":
    main()
