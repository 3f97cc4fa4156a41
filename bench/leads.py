"""Leads bench: the lead list (/leads/) with its filters, sorts and a deep page, and one
lead's page, at a given tenant size.

    .venv/bin/python bench/leads.py --leads 100000 [--requests 30] [--explain]

Fills tenant `bench` (or --tenant) with --leads leads (idempotent: only what is missing is
added) across 8 channels and 10 tags (about 30% of the leads tagged), owned by 20 reps
(60%; the rest is the unassigned pool), with revisits (1 in 20) and suspects (1 in 33);
then times the pages as the manager `<tenant>-leads-manager` and prints JSON. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from common import emit, explain, log, measure, prepare_database, setup_django, vacuum_analyze
from words import TRADES

BATCH = 5_000
PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
# Lead i was created i minutes after this: distinct, ordered created_at values.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
EXTERNAL_PREFIX = "bench-lead-"
REPS = 20

CHANNELS = [
    ("官网表单", "web_form"),
    ("公众号", "wechat_oa"),
    ("展会扫码", "trade_show_qr"),
    ("抖音线索", "douyin"),
    ("企业微信", "wecom"),
    ("短信", "sms"),
    ("400 热线", "call_center"),
    ("导入名单", "import"),
]
TAGS = [
    ("紧急", "danger"),
    ("液压", "primary"),
    ("气动", "info"),
    ("医疗 DR", "success"),
    ("CT", "warning"),
    ("招标", "dark"),
    ("样品", "secondary"),
    ("大客户", "danger"),
    ("复购", "primary"),
    ("海外", "info"),
]
CITIES = [
    ("浙江省", "宁波市"),
    ("江苏省", "苏州市"),
    ("广东省", "深圳市"),
    ("上海市", "上海市"),
    ("北京市", "北京市"),
    ("山东省", "青岛市"),
    ("湖北省", "武汉市"),
    ("四川省", "成都市"),
    ("福建省", "厦门市"),
    ("天津市", "天津市"),
    ("河南省", "郑州市"),
]
# Company i: city short name + brand + trade + suffix. With 11 × 37 × 13 combinations a
# brand appears in 1 lead of 37, a (brand, trade) pair in 1 of 481.
CITY_SHORT = [
    "宁波",
    "苏州",
    "深圳",
    "上海",
    "北京",
    "青岛",
    "武汉",
    "成都",
    "厦门",
    "天津",
    "郑州",
]
BRANDS = [
    "恒力",
    "华信",
    "永安",
    "德胜",
    "瑞丰",
    "宏达",
    "鑫源",
    "中科",
    "金桥",
    "远航",
    "天成",
    "东方",
    "新纪元",
    "博远",
    "长城",
    "联创",
    "海天",
    "银河",
    "嘉禾",
    "万通",
    "正泰",
    "明阳",
    "普瑞",
    "同舟",
    "盛世",
    "凯达",
    "信诚",
    "安泰",
    "华宇",
    "卓越",
    "锦程",
    "百川",
    "恒通",
    "九州",
    "启明",
    "和泰",
    "泰山",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
TITLES = ["工", "经理", "总", "主任", "老师"]
STATUSES = ["new"] * 4 + ["assigned"] * 3 + ["valid"] * 2 + ["invalid"]
GRADES = ["A", "B", "B", "C"]
SEARCH = "恒力液压"  # one (brand, trade) pair: about 1 lead in 481

# (label, path, query parameters); {channel}, {tag} and {lead} are filled in at run time.
PAGES = [
    ("leads", "/leads/", None),
    ("leads_status_new", "/leads/", {"status": "new"}),
    ("leads_channel", "/leads/", {"channel": "{channel}"}),
    ("leads_tag", "/leads/", {"tag": "{tag}"}),
    ("leads_search", "/leads/", {"q": SEARCH}),
    ("leads_sorted_company", "/leads/", {"sort": "company"}),
    ("leads_sorted_contact", "/leads/", {"sort": "contact_name"}),
    ("leads_sorted_channel", "/leads/", {"sort": "channel"}),
    ("leads_sorted_grade", "/leads/", {"sort": "source_grade"}),
    ("leads_sorted_status_desc", "/leads/", {"sort": "-status"}),
    ("leads_sorted_oldest", "/leads/", {"sort": "created_at"}),
    ("leads_deep_page", "/leads/", {"page": 1000}),
    ("leads_search_deep_page", "/leads/", {"q": SEARCH, "page": 4}),
    # Short CJK terms: a surname in 1 lead of 20, a two-character name in none, one
    # character of a brand, and a phone's last four digits (1 lead in 10,000).
    ("leads_search_surname", "/leads/", {"q": "王"}),
    ("leads_search_absent", "/leads/", {"q": "欧阳"}),
    ("leads_search_one_char", "/leads/", {"q": "鑫"}),
    ("leads_search_phone_tail", "/leads/", {"q": "5678"}),
    ("leads_exact_count", "/leads/", {"count": "exact"}),
    ("leads_suspect", "/leads/", {"suspect": "yes"}),
    ("leads_as_rep", "/leads/", None),  # signed in as a rep: own leads only
    ("lead_detail", "{lead}", None),
]


def external_id(i: int) -> str:
    return f"{EXTERNAL_PREFIX}{i:07d}"


def company(i: int) -> str:
    return (
        CITY_SHORT[i % len(CITY_SHORT)]
        + BRANDS[(i // 7) % len(BRANDS)]
        + TRADES[(i // 3) % len(TRADES)]
        + "有限公司"
    )


def ensure_people(tenant, slug: str):
    """The manager who signs in, and the reps who own leads."""
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role

    User = get_user_model()

    def seat(username, role, first, last):
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": first, "last_name": last}
        )
        if created:
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        membership, _ = Membership.objects.update_or_create(
            tenant=tenant, user=user, defaults={"role": role, "is_active": True}
        )
        return Membership.objects.select_related("tenant", "user").get(pk=membership.pk)

    manager = seat(f"{slug}-leads-manager", Role.MANAGER, "经理", "线索")
    reps = [
        seat(f"{slug}-leads-rep{n:02d}", Role.REP, f"{n:02d}", SURNAMES[n % len(SURNAMES)])
        for n in range(1, REPS + 1)
    ]
    return manager, reps


def ensure_catalogue(tenant):
    from leads.models import Channel, Tag

    channels = []
    for name, kind in CHANNELS:
        channel = Channel.objects.filter(name=name).first()
        channels.append(channel or Channel.objects.create(tenant=tenant, name=name, type=kind))
    tags = [
        Tag.objects.get_or_create(tenant=tenant, name=name, defaults={"color": color})[0]
        for name, color in TAGS
    ]
    return channels, tags


def fill(leads: int, slug: str) -> dict:
    from django.db import connection

    from crm.models import Tenant
    from crm.tenancy import tenant_context
    from leads.models import Lead

    tenant, _ = Tenant.objects.get_or_create(
        slug=slug, defaults={"name": "Bench 基准", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):  # memberships are row-level secured too
        manager, reps = ensure_people(tenant, slug)
    with tenant_context(tenant):
        channels, tags = ensure_catalogue(tenant)
        present = set(
            Lead.objects.filter(external_id__startswith=EXTERNAL_PREFIX).values_list(
                "external_id", flat=True
            )
        )
    missing = [i for i in range(1, leads + 1) if external_id(i) not in present]
    log(f"leads: {len(present)} present, {len(missing)} to create")
    Tagging = Lead.tags.through
    tagged = 0
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        batch = []
        for i in chunk:
            province, city = CITIES[i % len(CITIES)]
            phone = f"+861{3 + i % 6}{i:09d}"
            suspect = i % 33 == 0
            batch.append(
                Lead(
                    tenant=tenant,
                    company=company(i),
                    contact_name=SURNAMES[i % len(SURNAMES)] + TITLES[i % len(TITLES)],
                    phone=phone,
                    phone_key=phone,
                    province=province,
                    city=city,
                    message="想了解一下产品报价和交期。",
                    external_id=external_id(i),
                    utm={"utm_source": "baidu", "utm_campaign": f"c{i % 12}"} if i % 4 == 0 else {},
                    channel=channels[i % len(channels)],
                    source_grade=GRADES[i % len(GRADES)],
                    status=STATUSES[i % len(STATUSES)],
                    owner=reps[i % len(reps)] if i % 5 < 3 else None,
                    is_suspect=suspect,
                    suspect_reasons=["Looks like a test entry"] if suspect else [],
                    created_at=EPOCH + timedelta(minutes=i),
                )
            )
        with tenant_context(tenant):
            created = Lead.objects.bulk_create(batch, batch_size=BATCH)
            links = []
            for i, lead in zip(chunk, created, strict=True):
                if i % 10 in (0, 3, 7):  # 30% tagged, one in nine of them twice
                    links.append(Tagging(lead_id=lead.pk, tag_id=tags[(i // 10) % len(tags)].pk))
                    if i % 9 == 0:
                        second = tags[(i // 10 + 1) % len(tags)]
                        links.append(Tagging(lead_id=lead.pk, tag_id=second.pk))
            Tagging.objects.bulk_create(links, batch_size=BATCH)
            tagged += len(links)
        log(f"  leads {start + len(chunk)}/{len(missing)}")

    # Revisits: lead i (i % 20 == 0) comes back to lead i - 7, set once both exist.
    with tenant_context(tenant):
        ids = dict(
            Lead.objects.filter(external_id__startswith=EXTERNAL_PREFIX).values_list(
                "external_id", "id"
            )
        )
        pending = set(
            Lead.objects.filter(
                external_id__startswith=EXTERNAL_PREFIX, revisit_of__isnull=True
            ).values_list("external_id", flat=True)
        )
        pairs = [
            (ids[external_id(i)], ids[external_id(i - 7)])
            for i in range(20, leads + 1, 20)
            if external_id(i) in pending and external_id(i - 7) in ids
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE leads_lead SET revisit_of_id = v.original FROM "
                "unnest(%s::bigint[], %s::bigint[]) AS v(id, original) "
                "WHERE leads_lead.id = v.id",
                [[p[0] for p in pairs], [p[1] for p in pairs]],
            )
    revisits = len(pairs)
    return {
        "tenant": tenant,
        "manager": manager,
        "rep": reps[0],
        "channels": channels,
        "tags": tags,
        "leads_created": len(missing),
        "taggings_created": tagged,
        "revisits_set": revisits,
    }


def ensure_detail_lead(tenant, channel):
    """The lead whose page is measured: a revisit-free original with 30 timeline entries
    and two inbound payloads (so the timeline has two pages)."""
    import json

    from crm.tenancy import tenant_context
    from leads.models import EventSource, InboundEvent, Lead, LeadEvent

    with tenant_context(tenant):
        lead = Lead.objects.get(external_id=external_id(1))
        if not lead.events.exists():
            LeadEvent.objects.bulk_create(
                LeadEvent(
                    tenant=tenant,
                    lead=lead,
                    kind=["intake", "tagged", "registry"][n % 3],
                    message=f"bench event {n}",
                    at=lead.created_at + timedelta(minutes=n),
                )
                for n in range(30)
            )
            for n in range(2):
                payload = {"company": lead.company, "tel": lead.phone, "n": n}
                body = json.dumps(payload, ensure_ascii=False)
                InboundEvent.objects.create(
                    tenant=tenant,
                    channel=channel,
                    source=EventSource.WEBHOOK,
                    raw_body=body,
                    body_sha256=f"bench-{n}",
                    payload=payload,
                    status="processed",
                    lead=lead,
                )
        return lead


def compare_roles(statements: list[str], *, tenant, n: int) -> dict:
    """A page's SELECTs replayed `n` times as the app role (in the tenant's transaction:
    row-level security applies, as in a request) and as the owner connection (the
    superuser `postgres` here: no policy applies; the queries carry their own tenant
    filter), alternately. Medians of the summed SQL time, and per statement."""
    import statistics

    from django.db import connections, transaction

    from crm.tenancy import tenant_context

    def run(alias: str) -> list[float]:
        times = []
        connection = connections[alias]
        scope = tenant_context(tenant) if alias == "default" else transaction.atomic(using=alias)
        with scope, connection.cursor() as cursor:
            for sql in statements:
                start = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                times.append((time.perf_counter() - start) * 1000)
        return times

    runs = {"default": [], "owner": []}
    for _ in range(n):
        for alias in runs:
            runs[alias].append(run(alias))

    def summary(alias: str) -> dict:
        per = list(zip(*runs[alias], strict=True)) if statements else []
        return {
            "sql_median_ms": round(statistics.median(sum(r) for r in runs[alias]), 2),
            "statements_median_ms": [round(statistics.median(t), 2) for t in per],
        }

    return {
        "n": n,
        "statements": [sql[:120] for sql in statements],
        "app_role_under_rls": summary("default"),
        "owner_without_rls": summary("owner"),
    }


# What the bulk load wrote, vacuumed and analysed before measuring.
TABLES = (
    "leads_lead",
    "leads_lead_tags",
    "leads_tag",
    "leads_channel",
    "leads_leadevent",
    "leads_searchgram",
    "leads_inboundevent",
    "crm_membership",
    "auth_user",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000, help="leads in the tenant")
    parser.add_argument("--tenant", default="bench", help="tenant slug (default: bench)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument("--only", nargs="*", help="measure only these page labels")
    parser.add_argument(
        "--export", action="store_true", help="also time the whole tenant's CSV once"
    )
    parser.add_argument(
        "--roles",
        type=int,
        default=20,
        metavar="N",
        help="replay each page's SELECTs N times as the app role and as the owner (0: skip)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add EXPLAIN ANALYZE of each page's SQL (as the app role) to the JSON",
    )
    args = parser.parse_args()

    setup_django()
    prepare_database()

    from django.db.models import Q

    from crm.models import Membership
    from crm.tenancy import tenant_context
    from leads.models import Lead

    started = time.perf_counter()
    filled = fill(args.leads, args.tenant)
    tenant, manager, rep = filled["tenant"], filled["manager"], filled["rep"]
    channel, tag = filled["channels"][2], filled["tags"][1]
    lead = ensure_detail_lead(tenant, filled["channels"][0])
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)
    vacuumed = time.perf_counter()

    with tenant_context(tenant):
        leads = Lead.objects.all()
        counts = {
            "leads_in_tenant": leads.count(),
            "status_new": leads.filter(status="new").count(),
            "channel": leads.filter(channel=channel).count(),
            "tag": leads.filter(tags=tag).count(),
            "search_matches": leads.filter(
                Q(company__icontains=SEARCH)
                | Q(contact_name__icontains=SEARCH)
                | Q(phone__icontains=SEARCH)
            ).count(),
            "suspect": leads.filter(is_suspect=True).count(),
            "revisits": leads.filter(revisit_of__isnull=False).count(),
            "rep_own": leads.filter(owner=rep).count(),
        }
    with tenant_context(tenant):
        counts["memberships_in_tenant"] = Membership.objects.in_tenant(tenant).count()
    if counts["leads_in_tenant"] > args.leads:
        log(
            f"note: the tenant already holds {counts['leads_in_tenant']} leads (more than "
            f"--leads {args.leads}); use another --tenant to measure a smaller size"
        )

    fills = {"channel": str(channel.pk), "tag": str(tag.pk), "lead": f"/leads/{lead.public_id}/"}
    pages = {}
    for label, path, params in PAGES:
        if args.only and label not in args.only:
            continue
        path = path.format(**fills)
        params = {k: str(v).format(**fills) for k, v in params.items()} if params else None
        log(f"measuring {label}: {path} {params or ''}")
        result = measure(
            path,
            membership=rep if label == "leads_as_rep" else manager,
            n=args.requests,
            warmup=args.warmup,
            params=params,
            keep_sql=True,
        )
        statements = [
            q["sql"]
            for q in result.pop("sql")
            if q["sql"].lstrip().upper().startswith("SELECT") and "set_config(" not in q["sql"]
        ]
        if args.roles:
            result["rls"] = compare_roles(statements, tenant=tenant, n=args.roles)
        if args.explain:
            result["explain"] = [
                {"sql": sql, "plan": explain(sql, tenant=tenant)} for sql in statements
            ]
        pages[label] = result

    if args.export:
        # The whole tenant as CSV: seconds, not a page; timed once, for information.
        log("measuring leads_export_csv: /leads/?_export=csv (every lead)")
        pages["leads_export_csv"] = measure(
            "/leads/", membership=manager, n=1, warmup=0, params={"_export": "csv"}
        )

    emit(
        {
            "bench": "leads",
            "tenant": args.tenant,
            "leads_requested": args.leads,
            "generation": {
                "seconds": round(loaded - started, 2),
                "vacuum_analyze_seconds": round(vacuumed - loaded, 2),
                "leads_created": filled["leads_created"],
                "taggings_created": filled["taggings_created"],
                "revisits_set": filled["revisits_set"],
            },
            "rows": counts,
            "targets": {"median_ms_max": 70, "queries_constant": True},
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
