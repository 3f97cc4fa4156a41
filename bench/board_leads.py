"""The board bench's leads and follow-ups (bench/board.py): the window of 180 days,
the leads with their follow-ups written by COPY in transactions of 50,000 leads (ids
reserved from the sequence, so a chunk is there entirely or not at all), then the
revisits' and the customers' first leads linked."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta

from board_data import DAYS, SEED, SIZE, external_id
from board_db import Table, copy_rows, owner_transaction, reserve_ids
from board_plan import Plan
from common import log

LEAD_COLUMNS = [
    "id",
    "tenant_id",
    "public_id",
    "company",
    "contact_name",
    "phone",
    "industry",
    "message",
    "industry_remark",
    "email",
    "title",
    "province",
    "city",
    "budget",
    "external_id",
    "utm",
    "channel_id",
    "source_grade",
    "status",
    "owner_id",
    "is_suspect",
    "suspect_reasons",
    "intake_issues",
    "registry_status",
    "phone_key",
    "company_key",
    "contact_key",
    "created_at",
    "score",
    "assigned_at",
    "dispatch_round",
    "pooled_at",
    "pool_reason",
    "first_touch_at",
    "last_touch_at",
    "touch_count",
    "first_touch_late",
    "verified_at",
    "verification",
    "invalid_reason_id",
    "verified_by_id",
    "customer_id",
    "contact_id",
    "revisit_of_id",
]
INTERACTION_COLUMNS = [
    "tenant_id",
    "public_id",
    "customer_id",
    "lead_id",
    "contact_id",
    "by_id",
    "at",
    "channel",
    "talk_tags",
    "pains",
    "roles",
    "note",
    "next_action_id",
    "next_action_due",
    "next_done_at",
    "suggested_status",
    "closes_loop",
    "kind",
]


def lead_window(tenant) -> tuple[datetime, datetime]:
    """[start, end): a first run ends the window now; later runs keep the first run's
    window (lead 0's arrival marks its start), so they add exactly what is missing."""
    from django.utils import timezone

    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT created_at FROM leads_lead WHERE tenant_id = %s AND external_id = %s",
            [tenant.pk, external_id(0)],
        )
        found = cursor.fetchone()
    if found:
        return found[0], found[0] + timedelta(days=DAYS)  # lead 0 arrives at the start
    end = timezone.now().replace(microsecond=0)
    return end - timedelta(days=DAYS), end


def fill_leads(tenant, plan: Plan, cmap) -> dict:
    from customers.models import Interaction
    from leads.models import Lead

    leads_table = Table(Lead, LEAD_COLUMNS[1:], with_id=True)
    interactions_table = Table(Interaction, INTERACTION_COLUMNS)
    chunks = list(range(0, SIZE.leads, SIZE.chunk))
    markers = {external_id(min(c + SIZE.chunk, SIZE.leads) - 1): c for c in chunks}
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT external_id FROM leads_lead WHERE tenant_id = %s AND external_id = ANY(%s)",
            [tenant.pk, list(markers)],
        )
        present = {markers[row[0]] for row in cursor.fetchall()}
    first_ids = chunk_first_ids(tenant)
    made = Counter()
    per_chunk = SIZE.interactions * SIZE.chunk // SIZE.leads
    for c0 in chunks:
        if c0 in present:
            continue
        c1 = min(c0 + SIZE.chunk, SIZE.leads)
        started = time.perf_counter()
        with owner_transaction(tenant) as cursor:
            first = first_ids[c0] = reserve_ids(cursor, "leads_lead", c1 - c0)
            built = [plan.build(i, first + i - c0, cmap, tenant.pk) for i in range(c0, c1)]
            for i, (row, _chain) in enumerate(built, start=c0):
                original = Plan.original_of(i)
                if original is not None:
                    row["revisit_of_id"] = lead_id(first_ids, original)
            # Exactly `per_chunk` follow-ups: the chunk's own draw adds or removes some.
            chains = [c for _row, c in built if c is not None]
            adjust = random.Random(SEED + c0)
            total = sum(c["k"] for c in chains)
            while total != per_chunk and chains:
                c = adjust.choice(chains)
                if total < per_chunk and c["k"] < 12:
                    c["k"] += 1
                    total += 1
                elif total > per_chunk and c["k"] > 0:
                    c["k"] -= 1
                    total -= 1
            interactions = []
            for row, chain in built:
                if chain is not None:
                    interactions.extend(plan.follow_ups(row, chain, tenant.pk))
            generated = time.perf_counter()
            made["leads"] += copy_rows(
                cursor,
                leads_table,
                (tuple(row.get(col) for col in leads_table.columns) for row, _c in built),
            )
            made["interactions"] += copy_rows(cursor, interactions_table, interactions)
        made["chunks"] += 1
        log(
            f"  leads {c1}/{SIZE.leads}: {c1 - c0} leads, {len(interactions)} follow-ups in "
            f"{time.perf_counter() - started:.1f} s (generating {generated - started:.1f} s)"
        )
        for row, _c in built:
            made[row["status"]] += 1
    return dict(made)


def chunk_first_ids(tenant) -> dict[int, int]:
    """The id of each loaded chunk's first lead: a chunk's ids are consecutive (one
    reserved range, one COPY), so lead i's id is its chunk's first plus its offset."""
    firsts = {external_id(c): c for c in range(0, SIZE.leads, SIZE.chunk)}
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT external_id, id FROM leads_lead WHERE tenant_id = %s AND external_id = ANY(%s)",
            [tenant.pk, list(firsts)],
        )
        return {firsts[ext]: pk for ext, pk in cursor.fetchall()}


def lead_id(first_ids: dict[int, int], i: int) -> int:
    c0 = i - i % SIZE.chunk
    return first_ids[c0] + i - c0


def link_revisits_and_firsts(tenant) -> dict:
    """Revisits point at their original (set at load already; this completes leads loaded
    by an earlier version), and each customer's first lead and creation time come from
    its earliest valid lead. Idempotent."""
    first_ids = chunk_first_ids(tenant)
    pairs = [
        (lead_id(first_ids, i), lead_id(first_ids, o))
        for i in range(SIZE.leads)
        if (o := Plan.original_of(i)) is not None
    ]
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            """
            UPDATE leads_lead AS l SET revisit_of_id = v.original
            FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, original)
            WHERE l.id = v.id AND l.tenant_id = %s AND l.revisit_of_id IS NULL
            """,
            [[p[0] for p in pairs], [p[1] for p in pairs], tenant.pk],
        )
        revisits = cursor.rowcount
        cursor.execute(
            """
            UPDATE customers_customer AS c SET source_lead_id = f.lead_id,
                created_at = f.verified_at
            FROM (
                SELECT DISTINCT ON (customer_id) customer_id, id AS lead_id, verified_at
                FROM leads_lead WHERE tenant_id = %s AND customer_id IS NOT NULL
                ORDER BY customer_id, verified_at, id
            ) AS f
            WHERE c.id = f.customer_id AND c.tenant_id = %s AND c.source_lead_id IS NULL
            """,
            [tenant.pk, tenant.pk],
        )
        firsts = cursor.rowcount
        cursor.execute(
            "UPDATE customers_contact AS k SET created_at = c.created_at "
            "FROM customers_customer AS c WHERE k.customer_id = c.id AND k.tenant_id = %s "
            "AND k.created_at < c.created_at",
            [tenant.pk],
        )
    return {"revisits_linked": revisits, "customers_first_lead_set": firsts}
