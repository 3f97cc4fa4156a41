"""Customers bench: the customer list (/customers/) with its search, filters, sorts, a deep
page and the CSV export, at a given tenant size.

    .venv/bin/python bench/customers.py --customers 100000 [--requests 30] [--explain]

Fills tenant `bench-customers` (or --tenant) with --customers customers (idempotent: only
what is missing is added), owned by 20 reps (90%; the rest have no owner), levels A/B/C
1:3:6, one contact with a mobile number each, a follow-up on 70% of them (the latest
follow-up's time is kept on the customer by the triggers of migration customers.0002, as
in production) and one valid lead on 30%; then times the pages as the manager
`<tenant>-manager` (and one rep) and prints JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from common import emit, explain, log, measure, prepare_database, setup_django, vacuum_analyze
from words import TRADES

BATCH = 5_000
PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
# Customer i was created i minutes after EPOCH, and contacted last (when it was) i minutes
# after CONTACTED: distinct, ordered times, the newest the highest i.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
CONTACTED = datetime(2025, 6, 1, tzinfo=UTC)
REPS = 20
CITIES = [
    ("浙江省", "宁波市"),
    ("江苏省", "苏州市"),
    ("广东省", "深圳市"),
    ("上海市", "上海市"),
    ("北京市", "北京市"),
    ("山东省", "青岛市"),
    ("湖北省", "武汉市"),
    ("四川省", "成都市"),
]
BRANDS = ["恒力", "华信", "永安", "德胜", "瑞丰", "宏达", "鑫源", "中科", "金桥", "远航", "天成"]
INDUSTRIES = ["manufacturing", "energy", "infrastructure", "other"]
LEVELS = ["A"] + ["B"] * 3 + ["C"] * 6
SEARCH = "恒力液压"  # one (brand, trade) pair

# (label, query parameters, signed in as); {owner} is filled in at run time.
PAGES = [
    ("customers", None, "manager"),
    ("customers_as_rep", None, "rep"),
    ("customers_search", {"q": SEARCH}, "manager"),
    ("customers_search_phone", {"q": "139 0000 4242"}, "manager"),
    ("customers_level_a", {"level": "A"}, "manager"),
    ("customers_owner", {"owner": "{owner}"}, "manager"),
    ("customers_contacted_last_week", {"contacted_from": "{week_ago}"}, "manager"),
    ("customers_never_contacted", {"never_contacted": "never"}, "manager"),
    ("customers_sorted_name", {"sort": "name"}, "manager"),
    ("customers_sorted_oldest_contact", {"sort": "last_contact"}, "manager"),
    ("customers_sorted_level", {"sort": "level"}, "manager"),
    ("customers_deep_page", {"page": 200}, "manager"),  # the last page within the count cap
]


def name(i: int) -> str:
    return (
        CITIES[i % len(CITIES)][1][:2]
        + BRANDS[(i // 7) % len(BRANDS)]
        + TRADES[(i // 3) % len(TRADES)]
        + f"有限公司{i:06d}"
    )


def phone(i: int) -> str:
    return f"+86139{i:08d}"


def ensure_people(tenant, slug: str):
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role

    User = get_user_model()

    def seat(username, role):
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        membership, _ = Membership.objects.update_or_create(
            tenant=tenant, user=user, defaults={"role": role, "is_active": True}
        )
        return Membership.objects.select_related("tenant", "user").get(pk=membership.pk)

    manager = seat(f"{slug}-manager", Role.MANAGER)
    reps = [seat(f"{slug}-rep{n:02d}", Role.REP) for n in range(1, REPS + 1)]
    return manager, reps


def fill(count: int, slug: str) -> dict:
    from crm.models import Tenant
    from crm.tenancy import tenant_context
    from customers.models import Contact, Customer, Interaction, PresetKind
    from customers.services import presets
    from leads.models import Channel, ChannelType, Lead

    tenant, _ = Tenant.objects.get_or_create(
        slug=slug, defaults={"name": "Bench 客户", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):  # memberships are row-level secured too
        manager, reps = ensure_people(tenant, slug)
    with tenant_context(tenant):
        action = presets(PresetKind.ACTION).first()
        channel = Channel.objects.filter(name="官网表单").first() or Channel.objects.create(
            tenant=tenant, name="官网表单", type=ChannelType.WEB_FORM
        )
        present = set(Customer.objects.values_list("name", flat=True))
    missing = [i for i in range(1, count + 1) if name(i) not in present]
    log(f"customers: {len(present)} present, {len(missing)} to create")
    made = {"customers": 0, "contacts": 0, "follow_ups": 0, "leads": 0}
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        with tenant_context(tenant):
            customers = Customer.objects.bulk_create(
                [
                    Customer(
                        tenant=tenant,
                        name=name(i),
                        level=LEVELS[i % len(LEVELS)],
                        industry=INDUSTRIES[i % len(INDUSTRIES)],
                        province=CITIES[i % len(CITIES)][0],
                        city=CITIES[i % len(CITIES)][1],
                        owner=reps[i % REPS] if i % 10 else None,
                        created_at=EPOCH + timedelta(minutes=i),
                    )
                    for i in chunk
                ],
                batch_size=BATCH,
            )
            Contact.objects.bulk_create(
                [
                    Contact(
                        tenant=tenant,
                        customer=customer,
                        name="王工",
                        phone=phone(i),
                        phone_key=phone(i),
                    )
                    for i, customer in zip(chunk, customers, strict=True)
                ],
                batch_size=BATCH,
            )
            Interaction.objects.bulk_create(
                [
                    Interaction(
                        tenant=tenant,
                        customer=customer,
                        by=customer.owner or reps[0],
                        at=CONTACTED + timedelta(minutes=i),
                        channel="phone",
                        next_action=action,
                        next_action_due=(CONTACTED + timedelta(days=3)).date(),
                        next_done_at=CONTACTED + timedelta(minutes=i + 1),
                    )
                    for i, customer in zip(chunk, customers, strict=True)
                    if i % 10 < 7
                ],
                batch_size=BATCH,
            )
            Lead.objects.bulk_create(
                [
                    Lead(
                        tenant=tenant,
                        channel=channel,
                        company=customer.name,
                        contact_name="王工",
                        phone=phone(i),
                        phone_key=phone(i),
                        status="valid",
                        owner=customer.owner,
                        customer=customer,
                        external_id=f"bench-customer-{i:07d}",
                        created_at=EPOCH + timedelta(minutes=i),
                    )
                    for i, customer in zip(chunk, customers, strict=True)
                    if i % 10 < 3
                ],
                batch_size=BATCH,
            )
        made["customers"] += len(chunk)
        made["contacts"] += len(chunk)
        made["follow_ups"] += sum(1 for i in chunk if i % 10 < 7)
        made["leads"] += sum(1 for i in chunk if i % 10 < 3)
        log(f"  customers {start + len(chunk)}/{len(missing)}")
    return {"tenant": tenant, "manager": manager, "rep": reps[1], "made": made}


# What the bulk load wrote, vacuumed and analysed before measuring.
TABLES = (
    "customers_customer",
    "customers_contact",
    "customers_interaction",
    "leads_lead",
    "crm_membership",
    "auth_user",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000, help="customers in the tenant")
    parser.add_argument("--tenant", default="bench-customers", help="tenant slug")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument("--only", nargs="*", help="measure only these page labels")
    parser.add_argument(
        "--csv-requests", type=int, default=3, help="timed exports of every customer (CSV)"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add EXPLAIN ANALYZE of each page's SQL (as the app role) to the JSON",
    )
    args = parser.parse_args()

    setup_django()
    prepare_database()

    from crm.tenancy import tenant_context
    from customers.models import Customer

    started = time.perf_counter()
    filled = fill(args.customers, args.tenant)
    tenant, manager, rep = filled["tenant"], filled["manager"], filled["rep"]
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)
    vacuumed = time.perf_counter()

    with tenant_context(tenant):
        customers = Customer.objects.all()
        newest = customers.order_by_last_contact().values_list("last_contact_at", flat=True)[0]
        week_ago = (newest - timedelta(days=7)).date()
        counts = {
            "customers_in_tenant": customers.count(),
            "contacted": customers.filter(last_contact_at__isnull=False).count(),
            "level_a": customers.filter(level="A").count(),
            "rep_own": customers.filter(owner=rep).count(),
            "contacted_last_week": customers.filter(last_contact_at__date__gte=week_ago).count(),
        }
    fills = {"owner": str(rep.pk), "week_ago": week_ago.isoformat()}
    pages = {}
    for label, params, who in PAGES:
        if args.only and label not in args.only:
            continue
        params = {k: str(v).format(**fills) for k, v in params.items()} if params else None
        log(f"measuring {label}: /customers/ {params or ''}")
        result = measure(
            "/customers/",
            membership=rep if who == "rep" else manager,
            n=args.requests,
            warmup=args.warmup,
            params=params,
            keep_sql=args.explain,
        )
        if args.explain:
            result["explain"] = [
                {"sql": q["sql"], "ms": q["ms"], "plan": explain(q["sql"], tenant=tenant)}
                for q in result.pop("sql")
                if q["sql"].lstrip().upper().startswith("SELECT") and "set_config(" not in q["sql"]
            ]
        pages[label] = result

    if not args.only or "customers_export_csv" in args.only:
        # Every customer as CSV, streamed: seconds, not a page; timed --csv-requests times.
        log("measuring customers_export_csv: /customers/?_export=csv (every customer)")
        pages["customers_export_csv"] = measure(
            "/customers/",
            membership=manager,
            n=args.csv_requests,
            warmup=0,
            params={"_export": "csv"},
            reference=10,
        )

    emit(
        {
            "bench": "customers",
            "tenant": args.tenant,
            "customers_requested": args.customers,
            "generation": {
                "seconds": round(loaded - started, 2),
                "vacuum_analyze_seconds": round(vacuumed - loaded, 2),
                **{f"{k}_created": v for k, v in filled["made"].items()},
            },
            "rows": counts,
            "targets": {"median_ms_max": 50, "queries_constant": True},
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
