"""The board bench's tenant (bench/board.py): its 200 reps with their profiles, a
manager and a marketing member; its channels and pick lists; its customers and their
contacts, written by COPY in chunks (idempotent: a chunk is there entirely or not at
all)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from board_data import (
    CHANNELS,
    CITIES,
    INDUSTRIES,
    PASSWORD,
    REPS,
    ROLES,
    SEED,
    SIZE,
    SURNAMES,
    TITLES,
    company_key,
    contact_phone,
    contacts_of,
    customer_name,
    customer_owner,
    person_name,
    rng,
    weighted,
)
from board_db import Table, copy_rows, owner_transaction, reserve_ids
from common import log

# -- people and catalogue --------------------------------------------------------------------


def ensure_people(tenant):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from crm.models import Membership, Role
    from crm.tenancy import tenant_context
    from leads.models import RepProfile

    User = get_user_model()
    password = make_password(PASSWORD)
    seats = [(f"{SIZE.slug}-rep{n:03d}", Role.REP) for n in range(1, REPS + 1)]
    seats += [(f"{SIZE.slug}-manager", Role.MANAGER), (f"{SIZE.slug}-marketing", Role.MARKETING)]
    names = [u for u, _ in seats]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [
            User(
                username=u,
                password=password,
                first_name=u.rsplit("-", 1)[-1],
                last_name=SURNAMES[n % len(SURNAMES)],
            )
            for n, (u, _) in enumerate(seats)
            if u not in existing
        ]
    )
    users = dict(User.objects.filter(username__in=names).values_list("username", "id"))
    seated = set(
        Membership.objects.in_tenant(tenant)
        .filter(user_id__in=users.values())
        .values_list("user_id", flat=True)
    )
    Membership.objects.bulk_create(
        [
            Membership(tenant=tenant, user_id=users[u], role=role)
            for u, role in seats
            if users[u] not in seated
        ]
    )
    members = {
        m.user.username: m
        for m in Membership.objects.in_tenant(tenant)
        .filter(user_id__in=users.values())
        .select_related("user", "tenant")
    }
    reps = [members[u] for u, role in seats if role == Role.REP]
    r = random.Random(SEED)
    with tenant_context(tenant):
        have = set(RepProfile.objects.values_list("membership_id", flat=True))
        RepProfile.objects.bulk_create(
            [
                RepProfile(
                    tenant=tenant,
                    membership=m,
                    industries=r.sample(INDUSTRIES[:4], r.choice([1, 2])),
                    provinces=[c[1] for c in r.sample(CITIES, r.choice([1, 2, 3]))],
                    response_tier=r.choice(["fast", "normal", "normal", "slow"]),
                    capacity=r.choice([None, None, None, 10, 12]),
                )
                for m in reps
                if m.pk not in have
            ]
        )
    return reps, members[f"{SIZE.slug}-manager"], members[f"{SIZE.slug}-marketing"]


def ensure_catalogue(tenant) -> dict:
    """Channels, and the tenant's pick lists as the services create them by default."""
    from crm.tenancy import tenant_context
    from customers.models import PresetKind
    from customers.services import presets, status_suggestions
    from leads.models import Channel
    from leads.verification import invalid_reasons

    with tenant_context(tenant):
        channels = []
        for name, kind, grade, weight in CHANNELS:
            channel = Channel.objects.filter(name=name).first() or Channel.objects.create(
                tenant=tenant, name=name, type=kind, default_grade=grade
            )
            channels.append((channel.pk, grade, weight))
        reasons = [(r.pk, r.name) for r in invalid_reasons()]
        tags = [(p.name, p.is_agreement) for p in presets(PresetKind.TALK_TAG)]
        pains = [p.name for p in presets(PresetKind.PAIN)]
        actions = [p.pk for p in presets(PresetKind.ACTION)]
        rules = [(s.keyword, s.status) for s in status_suggestions()]
    return {
        "channels": channels,
        "reasons": reasons,
        "talk_tags": tags,
        "pains": pains,
        "actions": actions,
        "rules": rules,
    }


# -- customers and contacts ------------------------------------------------------------------


def customer_rows(tenant, reps, start, c0: int, c1: int, first: int):
    """Customers c0 … c1 - 1, with ids from `first` on."""
    for j in range(c0, c1):
        r = rng(10_000_000 + j)
        name = customer_name(j)
        _short, province, city = CITIES[j % len(CITIES)]
        yield (
            first + j - c0,
            tenant.pk,
            uuid.uuid4(),
            name,
            company_key(name),
            weighted(r, [("A", 10), ("B", 30), ("C", 60)]),
            r.choice(INDUSTRIES),
            province,
            city,
            reps[customer_owner(j)].pk,
            start + timedelta(seconds=r.uniform(0, 3600)),
            "",  # code: none in the other systems
        )


def contact_rows(tenant, start, c0: int, c1: int, first: int):
    """The contacts of customers c0 … c1 - 1 (1 to 3 each)."""
    for j in range(c0, c1):
        r = rng(20_000_000 + j)
        for k in range(contacts_of(j)):
            phone = contact_phone(j, k)
            yield (
                tenant.pk,
                uuid.uuid4(),
                first + j - c0,
                person_name(r),
                phone,
                phone,
                "",
                r.choice(TITLES),
                r.choice(["", *ROLES]),
                start + timedelta(seconds=r.uniform(0, 3600)),
            )


def fill_customers(tenant, reps, start: datetime) -> dict:
    """150,000 customers with their contacts (COPY); returns the seconds and rows made."""
    from customers.models import Contact, Customer

    customers = Table(
        Customer,
        [
            "tenant_id",
            "public_id",
            "name",
            "name_key",
            "level",
            "industry",
            "province",
            "city",
            "owner_id",
            "created_at",
            "code",
        ],
        with_id=True,
    )
    contacts = Table(
        Contact,
        [
            "tenant_id",
            "public_id",
            "customer_id",
            "name",
            "phone",
            "phone_key",
            "email",
            "title",
            "role",
            "created_at",
        ],
    )
    markers = {
        customer_name(min(c + SIZE.customer_chunk, SIZE.customers) - 1): c
        for c in range(0, SIZE.customers, SIZE.customer_chunk)
    }
    made = {"customers": 0, "contacts": 0}
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT name FROM customers_customer WHERE tenant_id = %s AND name_key = ANY(%s)",
            [tenant.pk, [company_key(n) for n in markers]],
        )
        present = {markers[row[0]] for row in cursor.fetchall()}
    for c0 in range(0, SIZE.customers, SIZE.customer_chunk):
        if c0 in present:
            continue
        c1 = min(c0 + SIZE.customer_chunk, SIZE.customers)
        with owner_transaction(tenant) as cursor:
            first = reserve_ids(cursor, "customers_customer", c1 - c0)

            made["customers"] += copy_rows(
                cursor, customers, customer_rows(tenant, reps, start, c0, c1, first)
            )
            made["contacts"] += copy_rows(
                cursor, contacts, contact_rows(tenant, start, c0, c1, first)
            )
        log(f"  customers {c1}/{SIZE.customers}")
    return made


def customer_maps(tenant) -> tuple[list[int], dict[str, int], list[str]]:
    """Customer j → id, contact phone → id, customer j → level."""
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT name_key, id, level FROM customers_customer WHERE tenant_id = %s",
            [tenant.pk],
        )
        by_key = {key: (pk, level) for key, pk, level in cursor.fetchall()}
        cursor.execute(
            "SELECT phone_key, id FROM customers_contact WHERE tenant_id = %s AND phone_key "
            "LIKE '+8617%%'",
            [tenant.pk],
        )
        contacts = dict(cursor.fetchall())
    ids, levels = [], []
    for j in range(SIZE.customers):
        pk, level = by_key[company_key(customer_name(j))]
        ids.append(pk)
        levels.append(level)
    return ids, contacts, levels
