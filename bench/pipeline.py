"""Pipeline bench: the opportunities pages and the nightly calibration in a tenant of
200,000 opportunities with a year and a half of stage history.

    DATABASE_URL=postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_pipeline \\
    DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/crm_bench_pipeline \\
    .venv/bin/python bench/pipeline.py --opportunities 200000 [--requests 30] [--explain]

Fills tenant `bench-pipeline` (or --tenant; idempotent: opportunity i is generated from
i alone, and only the missing ones are added, in chunks that are there entirely or not
at all) with 50 reps and a manager, 20,000 customers, the default pipeline, and
--opportunities opportunities created over the last 540 days: each entered its stages
(sometimes skipping one, sometimes moving back), and most of those older than four months
closed, won or lost. The history (`created`, `stage`, `status` entries) is written by
COPY with the rows, as the triggers would have written it (they are off for the load:
`session_replication_role = replica` on the owner connection). The past 12 months get a
frozen forecast per rep and team (what was signed there × a factor from 0.75 to 1.25),
closed by `opportunities.forecast.close`.

Then it times the nightly work (`opportunities.calibration.recalibrate`, twice: the
first run after generation also rewrites the open opportunities' probabilities; the
freeze and the close), and the pages as the manager and a rep: the forecast
(`opportunities:forecast`), the kanban (`opportunities:kanban`) and the table
(`opportunities:list`); a page whose URL name does not resolve in this checkout is
skipped with a note. JSON on stdout, see bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from common import emit, explain, log, measure, prepare_database, setup_django, vacuum_analyze

PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
SEED = 2026
REPS = 50
CUSTOMERS = 20_000
CHUNK = 50_000
DAYS = 540
NAME_PREFIX = "BP-"
# The generated history ends at this instant (fixed, so a second run adds the same rows);
# the tenant's calibration window and the pages' months are the clock's.
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

TABLES = (
    "opportunities_opportunity",
    "opportunities_opportunityevent",
    "opportunities_forecastmonth",
    "opportunities_stagecalibration",
    "opportunities_stage",
    "customers_customer",
    "crm_membership",
    "auth_user",
)

# (label, url name, signed in as); the kanban and the table come from the pipeline views.
PAGES = [
    ("forecast_manager", "opportunities:forecast", "manager"),
    ("forecast_rep", "opportunities:forecast", "rep"),
    ("kanban_manager", "opportunities:kanban", "manager"),
    ("kanban_rep", "opportunities:kanban", "rep"),
    ("list_manager", "opportunities:list", "manager"),
    ("list_rep", "opportunities:list", "rep"),
]


# -- people, customers, the pipeline ---------------------------------------------------------


def ensure_tenant(slug: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from crm.models import Membership, Role, Tenant
    from crm.tenancy import tenant_context
    from customers.models import Customer
    from opportunities.setup import ensure_defaults

    tenant, _ = Tenant.objects.get_or_create(
        slug=slug, defaults={"name": "Bench 商机", "timezone": "Asia/Shanghai"}
    )
    User = get_user_model()
    seats = [(f"{slug}-rep{n:02d}", Role.REP) for n in range(1, REPS + 1)]
    seats.append((f"{slug}-manager", Role.MANAGER))
    names = [u for u, _ in seats]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password(PASSWORD)
    User.objects.bulk_create(
        [
            User(username=u, password=password, first_name=u.rsplit("-", 1)[-1])
            for u, _ in seats
            if u not in existing
        ]
    )
    users = {u.username: u for u in User.objects.filter(username__in=names)}
    with tenant_context(tenant):
        present = set(Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True))
        Membership.objects.bulk_create(
            [
                Membership(tenant=tenant, user=users[u], role=role)
                for u, role in seats
                if users[u].pk not in present
            ]
        )
        members = {
            m.user.username: m
            for m in Membership.objects.filter(tenant=tenant).select_related("user", "tenant")
        }
        ensure_defaults(tenant)
        have = Customer.objects.count()
        if have < CUSTOMERS:
            Customer.objects.bulk_create(
                [
                    Customer(
                        tenant=tenant,
                        name=f"商机客户{i:05d}有限公司",
                        owner=members[f"{slug}-rep{i % REPS + 1:02d}"],
                        created_at=END - timedelta(days=DAYS + 30),
                    )
                    for i in range(have, CUSTOMERS)
                ],
                batch_size=5_000,
            )
    manager = members[f"{slug}-manager"]
    reps = [members[f"{slug}-rep{n:02d}"] for n in range(1, REPS + 1)]
    return tenant, manager, reps


# -- one opportunity and its history ---------------------------------------------------------

STAGE_WEIGHTS_LOST = (35, 25, 20, 12, 8)  # the highest stage a lost one reached
STAGE_WEIGHTS_OPEN = (30, 25, 20, 15, 10)  # where an open one stands
DEFAULTS = (10, 25, 45, 70, 90)


def plan(i: int):
    """Opportunity i: its fields and the stages it entered with their times, from i alone."""
    r = random.Random(SEED * 1_000_003 + i)
    created = END - timedelta(days=r.uniform(0, DAYS), seconds=r.randrange(86_400))
    age = (END - created).days
    u = r.random()
    if age > 120:
        status = "open" if u < 0.10 else ("won" if u < 0.37 else "lost")
    elif age > 30:
        status = "open" if u < 0.60 else ("won" if u < 0.72 else "lost")
    else:
        status = "open" if u < 0.92 else "lost"
    if status == "won":
        top = 5 if r.random() < 0.7 else 4
    else:
        top = r.choices(
            range(1, 6), STAGE_WEIGHTS_LOST if status == "lost" else STAGE_WEIGHTS_OPEN
        )[0]
    ranks = [1]
    rank = 1
    while rank < top:
        step = 2 if (top - rank >= 2 and r.random() < 0.10) else 1  # a skip
        rank += step
        ranks.append(rank)
    if top >= 3 and status != "won" and r.random() < 0.05:
        ranks.append(top - 1)  # moved back
    # Stage entries spread over the time the opportunity has had.
    span = (END - created).total_seconds()
    closing = created + timedelta(seconds=span * r.uniform(0.3, 0.95)) if status != "open" else END
    times = [created]
    for _ in ranks[1:]:
        remaining = (closing - times[-1]).total_seconds()
        times.append(times[-1] + timedelta(seconds=remaining * r.uniform(0.15, 0.6)))
    closed_at = closing if status != "open" else None
    amount = None if r.random() < 0.05 else Decimal(r.randrange(50, 3000) * 1000)
    valid = status != "lost" and r.random() < 0.35
    if status == "open":
        expected = None if r.random() < 0.08 else (END + timedelta(days=r.uniform(-60, 270))).date()
        last_activity = END - timedelta(days=r.uniform(0, 60))
        probability = DEFAULTS[ranks[-1] - 1]
    else:
        expected = closed_at.date()
        last_activity = closed_at
        probability = 100 if status == "won" else 0
    return {
        "status": status,
        "ranks": ranks,
        "times": times,
        "closed_at": closed_at,
        "amount": amount,
        "valid": valid,
        "expected": expected.replace(day=1) if expected else None,
        "last_activity": max(last_activity, times[-1]),
        "probability": probability,
        "owner": i % REPS,
        "customer": i % CUSTOMERS,
        "reason": r.randrange(6),
    }


OPPORTUNITY_COLUMNS = [
    "id", "tenant_id", "public_id", "name", "customer_id", "contact_id", "owner_id",
    "origin_lead_id", "product_line", "amount", "budget_band", "expected_close", "stage_id",
    "probability", "status", "created_at", "stage_entered_at", "last_activity_at", "visit_at",
    "evidence_at", "approved_at", "won_at", "lost_at", "lost_reason_id", "lost_detail",
    "lost_blocker_id", "cycle_started_at", "lead_to_contract_days",
]  # fmt: skip
EVENT_COLUMNS = [
    "tenant_id", "public_id", "opportunity_id", "kind", "at", "actor_id", "path",
    "from_stage_id", "to_stage_id", "from_status", "to_status", "amount_before", "amount_after",
    "probability", "detail",
]  # fmt: skip


def load_opportunities(tenant, reps, target: int) -> dict:
    """Add opportunities up to `target` (chunks of CHUNK, each in one owner transaction)."""
    from board_db import owner_transaction, reserve_ids
    from django.db import connections

    from crm.tenancy import tenant_context
    from customers.models import Customer
    from opportunities.models import LostReason, Opportunity, Stage

    with tenant_context(tenant):
        have = Opportunity.objects.filter(name__startswith=NAME_PREFIX).count()
        stages = list(Stage.objects.order_by("position", "id").values_list("id", flat=True))
        customers = list(Customer.objects.order_by("id").values_list("id", flat=True))
        reasons = list(LostReason.objects.order_by("position").values_list("id", flat=True))
    made = {"opportunities": 0, "events": 0, "seconds": []}
    log(f"opportunities: {have} present, {max(0, target - have)} to create")
    owner_ids = [m.pk for m in reps]
    for start in range(have + 1, target + 1, CHUNK):
        stop = min(target, start + CHUNK - 1)
        started = time.perf_counter()
        with owner_transaction(tenant) as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            first_id = reserve_ids(cursor, "opportunities_opportunity", stop - start + 1)
            events = []
            with cursor.copy(
                f"COPY opportunities_opportunity ({', '.join(OPPORTUNITY_COLUMNS)}) FROM STDIN"
            ) as copy:
                for n, i in enumerate(range(start, stop + 1)):
                    p = plan(i)
                    pk = first_id + n
                    stage = stages[p["ranks"][-1] - 1]
                    closed = p["closed_at"]
                    valid_at = p["times"][0] if p["valid"] else None
                    copy.write_row(
                        (
                            pk, tenant.pk, uuid.uuid4(), f"{NAME_PREFIX}{i:07d}",
                            customers[p["customer"]], None, owner_ids[p["owner"]], None,
                            "液压机", p["amount"], "100k_500k" if p["valid"] else "pending",
                            p["expected"], stage, p["probability"], p["status"],
                            p["times"][0], p["times"][-1], p["last_activity"],
                            valid_at, valid_at, valid_at,
                            closed if p["status"] == "won" else None,
                            closed if p["status"] == "lost" else None,
                            reasons[p["reason"]] if p["status"] == "lost" else None,
                            "", None, None, None,
                        )
                    )  # fmt: skip
                    first_stage = stages[p["ranks"][0] - 1]
                    events.append(
                        (tenant.pk, uuid.uuid4(), pk, "created", p["times"][0], None, "import",
                         None, first_stage, "", "open", None, p["amount"], DEFAULTS[0], "{}")
                    )  # fmt: skip
                    for before, rank, at in zip(
                        p["ranks"][:-1], p["ranks"][1:], p["times"][1:], strict=True
                    ):
                        events.append(
                            (tenant.pk, uuid.uuid4(), pk, "stage", at, None, "import",
                             stages[before - 1], stages[rank - 1], "open", "open", None, None,
                             DEFAULTS[rank - 1], "{}")
                        )  # fmt: skip
                    if closed is not None:
                        events.append(
                            (tenant.pk, uuid.uuid4(), pk, "status", closed, None, "import",
                             stage, stage, "open", p["status"], None, p["amount"],
                             p["probability"], "{}")
                        )  # fmt: skip
            with cursor.copy(
                f"COPY opportunities_opportunityevent ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in events:
                    copy.write_row(row)
        seconds = time.perf_counter() - started
        made["opportunities"] += stop - start + 1
        made["events"] += len(events)
        made["seconds"].append(round(seconds, 1))
        log(f"  opportunities {stop}/{target}: {len(events)} history entries, {seconds:.1f} s")
    connections["owner"].close()
    return made


def load_forecast_history(tenant, today: date) -> dict:
    """The past 12 months frozen per rep and team (what was signed there × 0.75–1.25, as
    if forecast on the 1st), then closed by the product's `close`. Months already frozen
    are left alone."""
    from django.db import connection

    from crm.tenancy import tenant_context
    from opportunities import forecast

    this_month = forecast.first_of_month(today)
    months = [forecast.add_months(this_month, -n) for n in range(12, 0, -1)]
    inserted = 0
    with tenant_context(tenant), connection.cursor() as cursor:
        for month in months:
            since, until = forecast.month_bounds(tenant, month)
            cursor.execute(
                """
                INSERT INTO opportunities_forecastmonth
                  (tenant_id, public_id, month, owner_id, forecast, valid_forecast,
                   opportunities, frozen_at)
                SELECT %(tenant)s, gen_random_uuid(), %(month)s, g.owner_id, g.forecast,
                       round(g.forecast * 0.4, 2), g.n, %(since)s + interval '2 hours'
                  FROM (
                    SELECT o.owner_id,
                           SUM(round(COALESCE(o.amount, 0)
                               * (0.75 + ((o.owner_id * 31 + %(m)s) %% 51) / 100.0), 2))
                             AS forecast,
                           COUNT(*) AS n
                      FROM opportunities_opportunity o
                     WHERE o.tenant_id = %(tenant)s AND o.status = 'won'
                       AND o.won_at >= %(since)s AND o.won_at < %(until)s
                     GROUP BY ROLLUP (o.owner_id)) g
                 WHERE NOT EXISTS (SELECT 1 FROM opportunities_forecastmonth f
                                    WHERE f.tenant_id = %(tenant)s AND f.month = %(month)s)
                """,
                {"tenant": tenant.pk, "month": month, "since": since, "until": until,
                 "m": month.month},
            )  # fmt: skip
            inserted += cursor.rowcount
        started = time.perf_counter()
        closed = forecast.close_ended(tenant, today)
        close_seconds = time.perf_counter() - started
    return {
        "months": len(months),
        "rows_inserted": inserted,
        "months_closed": len(closed),
        "close_seconds": round(close_seconds, 3),
    }


# -- the nightly work ------------------------------------------------------------------------


def time_nightly(tenant, today: date) -> dict:
    """The calibration twice (the first after generation also rewrites the open
    probabilities), then this month's freeze (once: a frozen month stays), each in its own
    transaction as the nightly task runs it."""
    from crm.tenancy import tenant_context
    from opportunities import calibration, forecast

    runs = []
    for _ in range(2):
        started = time.perf_counter()
        with tenant_context(tenant):
            result = calibration.recalibrate(tenant, today)
        runs.append(
            {
                "seconds": round(time.perf_counter() - started, 3),
                "calibrated_stages": result.calibrated,
                "probabilities_refreshed": result.refreshed,
            }
        )
    started = time.perf_counter()
    with tenant_context(tenant):
        frozen = forecast.freeze(tenant, forecast.first_of_month(today))
    freeze_seconds = time.perf_counter() - started
    from opportunities.models import StageCalibration

    with tenant_context(tenant):
        stages = [
            {
                "stage": c.stage.code,
                "cases": c.cases,
                "won": c.won,
                "probability": c.probability,
                "calibrated": c.calibrated,
            }
            for c in StageCalibration.objects.select_related("stage").order_by("stage__position")
        ]
    return {
        "recalibrate": runs,
        "freeze_seconds": round(freeze_seconds, 3),
        "freeze_rows": frozen,
        "stages": stages,
        "target_seconds_max": 30,
    }


def counts(tenant) -> dict:
    from django.db.models import Count

    from crm.tenancy import tenant_context
    from opportunities.models import ForecastMonth, Opportunity, OpportunityEvent

    with tenant_context(tenant):
        by_status = dict(
            Opportunity.objects.order_by().values_list("status").annotate(n=Count("id"))
        )
        return {
            "opportunities": sum(by_status.values()),
            "by_status": by_status,
            "valid": Opportunity.objects.filter(is_valid=True).count(),
            "history_entries": OpportunityEvent.objects.count(),
            "frozen_rows": ForecastMonth.objects.count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--tenant", default="bench-pipeline", help="tenant slug")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument("--only", nargs="*", help="measure only these page labels")
    parser.add_argument("--skip-nightly", action="store_true", help="do not time the calibration")
    parser.add_argument(
        "--explain", action="store_true", help="add EXPLAIN ANALYZE of each page's SELECTs"
    )
    args = parser.parse_args()

    setup_django()
    prepare_database()

    from django.urls import NoReverseMatch, reverse

    from opportunities import forecast

    started = time.perf_counter()
    tenant, manager, reps = ensure_tenant(args.tenant)
    people = time.perf_counter()
    made = load_opportunities(tenant, reps, args.opportunities)
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)
    vacuumed = time.perf_counter()
    today = forecast.local_today(tenant)
    history = load_forecast_history(tenant, today)
    vacuum_analyze("opportunities_forecastmonth")

    nightly = None if args.skip_nightly else time_nightly(tenant, today)
    rows = counts(tenant)

    pages, skipped = {}, {}
    rep = reps[1]
    for label, name, who in PAGES:
        if args.only and label not in args.only:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            skipped[label] = f"the URL name {name!r} does not resolve in this checkout"
            log(f"skipping {label}: {skipped[label]}")
            continue
        log(f"measuring {label}: {url}")
        result = measure(
            url,
            membership=rep if who == "rep" else manager,
            n=args.requests,
            warmup=args.warmup,
            keep_sql=args.explain,
        )
        if args.explain:
            result["explain"] = [
                {"sql": q["sql"], "ms": q["ms"], "plan": explain(q["sql"], tenant=tenant)}
                for q in result.pop("sql")
                if q["sql"].lstrip().upper().startswith("SELECT") and "set_config(" not in q["sql"]
            ]
        pages[label] = result

    emit(
        {
            "bench": "pipeline",
            "tenant": args.tenant,
            "opportunities_requested": args.opportunities,
            "generation": {
                "people_customers_seconds": round(people - started, 2),
                "opportunities_seconds": round(loaded - people, 2),
                "vacuum_analyze_seconds": round(vacuumed - loaded, 2),
                "opportunities_created": made["opportunities"],
                "history_entries_created": made["events"],
                "chunk_seconds": made["seconds"],
                "forecast_history": history,
            },
            "rows": rows,
            "nightly": nightly,
            "targets": {
                "forecast_p95_ms_max": 150,
                "kanban_p95_ms_max": 150,
                "list_median_ms_max": 50,
                "calibration_seconds_max": 30,
                "queries_constant": True,
            },
            "pages": pages,
            "skipped": skipped,
        }
    )


if __name__ == "__main__":
    main()
