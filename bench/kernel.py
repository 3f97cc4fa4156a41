"""Kernel bench: the team list (/team/) and the home page at a given tenant size.

    .venv/bin/python bench/kernel.py --members 100000 [--requests 50] [--explain]

Fills tenant `bench` with --members memberships (users bench-u000001…; idempotent: only
what is missing is added) plus the manager `bench-manager` whom every request signs in as,
then times the pages and prints JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from common import emit, explain, log, measure, prepare_database, setup_django, vacuum_analyze

BATCH = 5_000
TENANT_SLUG = "bench"
USER_PREFIX = "bench-u"
MANAGER_USERNAME = "bench-manager"
PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
# Row i was created i minutes after this: distinct, ordered created_at values.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_NAMES = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛"]

# (label, path, query parameters). The search matches bench-u099900…bench-u099999 (100 rows)
# at 100k members and nothing at 1k. Page 1000 exists from 49,951 members on; below that
# django-tables2 shows the last page instead. `/team/` is ordered by username by default;
# the explicit `sort=username` pages check that the default and the asked-for order cost
# the same.
PAGES = [
    ("team", "/team/", None),
    ("team_sorted_created_desc", "/team/", {"sort": "-created_at"}),
    ("team_search", "/team/", {"q": "u0999"}),
    ("team_deep_page", "/team/", {"page": 1000}),
    ("team_sorted_username", "/team/", {"sort": "username"}),
    ("team_sorted_username_deep_page", "/team/", {"sort": "username", "page": 1000}),
    ("home", "/", None),
]


def username(i: int) -> str:
    return f"{USER_PREFIX}{i:06d}"


def role_for(i: int) -> str:
    from crm.models import Role

    if i % 50 == 0:
        return Role.ADMIN
    if i % 20 == 0:
        return Role.MANAGER
    return {3: Role.MARKETING, 7: Role.SERVICE}.get(i % 10, Role.REP)


def fill(members: int) -> dict:
    """Make sure tenant `bench` holds memberships for bench-u000001…bench-u{members}."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from crm.models import Membership, Tenant
    from crm.tenancy import tenant_context

    User = get_user_model()
    tenant, _ = Tenant.objects.get_or_create(
        slug=TENANT_SLUG, defaults={"name": "Bench 基准", "timezone": "Asia/Shanghai"}
    )
    password = make_password(PASSWORD)  # hashed once, shared by every bench user

    existing = set(
        User.objects.filter(username__startswith=USER_PREFIX).values_list("username", flat=True)
    )
    missing = [i for i in range(1, members + 1) if username(i) not in existing]
    log(f"users: {len(existing)} present, {len(missing)} to create")
    for start in range(0, len(missing), BATCH):
        batch = [
            User(
                username=username(i),
                first_name=GIVEN_NAMES[i % len(GIVEN_NAMES)],
                last_name=SURNAMES[(i // len(GIVEN_NAMES)) % len(SURNAMES)],
                email=f"{username(i)}@bench.example",
                password=password,
                is_active=True,
                date_joined=EPOCH + timedelta(minutes=i),
            )
            for i in missing[start : start + BATCH]
        ]
        with transaction.atomic():
            User.objects.bulk_create(batch, batch_size=BATCH)
        log(f"  users {start + len(batch)}/{len(missing)}")

    with tenant_context(tenant):  # memberships are row-level secured too
        seated = Membership.objects.filter(tenant=tenant).values("user_id")
        unseated = list(
            User.objects.filter(username__startswith=USER_PREFIX)
            .exclude(pk__in=seated)
            .values_list("pk", "username")
        )
        wanted = [(pk, int(name.removeprefix(USER_PREFIX))) for pk, name in unseated]
        wanted = sorted((i, pk) for pk, i in wanted if i <= members)
        log(f"memberships: {len(wanted)} to create")
        for start in range(0, len(wanted), BATCH):
            batch = [
                Membership(
                    tenant=tenant,
                    user_id=pk,
                    role=role_for(i),
                    is_active=i % 25 != 0,
                    created_at=EPOCH + timedelta(minutes=i),
                )
                for i, pk in wanted[start : start + BATCH]
            ]
            with transaction.atomic():
                Membership.objects.bulk_create(batch, batch_size=BATCH)
            log(f"  memberships {start + len(batch)}/{len(wanted)}")

    return {"tenant": tenant, "users_created": len(missing), "memberships_created": len(wanted)}


def ensure_manager(tenant):
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role

    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=MANAGER_USERNAME, defaults={"first_name": "经理", "last_name": "基准"}
    )
    if created:
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    membership, _ = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": Role.MANAGER, "is_active": True}
    )
    return Membership.objects.select_related("tenant", "user").get(pk=membership.pk)


# What the bulk load wrote, vacuumed and analysed before measuring.
TABLES = (
    "auth_user",
    "crm_membership",
    "crm_tenant",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000, help="memberships in the tenant")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add EXPLAIN ANALYZE of each page's slowest SQL (as the app role) to the JSON",
    )
    args = parser.parse_args()

    setup_django()
    prepare_database()

    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from crm.models import Membership
    from crm.tenancy import tenant_context

    started = time.perf_counter()
    filled = fill(args.members)
    tenant = filled["tenant"]
    with tenant_context(tenant):
        manager = ensure_manager(tenant)
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)
    vacuumed = time.perf_counter()

    with tenant_context(tenant):
        in_tenant = Membership.objects.in_tenant(tenant)
        members_in_tenant = in_tenant.count()
        if members_in_tenant > args.members + 1:
            log(
                f"note: the tenant already holds {members_in_tenant} memberships (more than "
                f"--members {args.members}); drop crm_bench to measure a smaller size"
            )
        counts = {
            "memberships_in_tenant": members_in_tenant,
            "search_matches": in_tenant.filter(
                Q(user__username__icontains="u0999")
                | Q(user__first_name__icontains="u0999")
                | Q(user__last_name__icontains="u0999")
            ).count(),
            "users_total": get_user_model().objects.count(),
        }

    pages = {}
    for label, path, params in PAGES:
        log(f"measuring {label}: {path} {params or ''}")
        result = measure(
            path,
            membership=manager,
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

    emit(
        {
            "bench": "kernel",
            "members_requested": args.members,
            "generation": {
                "seconds": round(loaded - started, 2),
                "vacuum_analyze_seconds": round(vacuumed - loaded, 2),
                "users_created": filled["users_created"],
                "memberships_created": filled["memberships_created"],
            },
            "rows": counts,
            "targets": {"median_ms_max": 70, "queries_constant": True},
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
