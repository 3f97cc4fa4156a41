"""The board bench's chosen rep (bench/board.py): the 300 open items of
`bench-board-rep001` (leads to verify, revisits, follow-ups due today and overdue) plus
120 due later, created when missing and realigned to today on every run."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from board_data import (
    CHOSEN_DUE_TODAY,
    CHOSEN_LATER,
    CHOSEN_NS,
    CHOSEN_OVERDUE,
    CHOSEN_PREFIX,
    CHOSEN_REVISITS,
    CHOSEN_VERIFY,
    CHOSEN_VERIFY_LATE,
    MESSAGES,
    NOTES,
    SEED,
    at_local,
    company_key,
    customer_name,
    local_date,
    person_key,
    person_name,
)
from board_plan import Plan


def chosen_items(tenant, chosen, plan: Plan, catalogue, now: datetime) -> dict:
    """Create (when missing) and realign to `now` the chosen rep's open items."""
    from django.db.models import Q

    from crm.tenancy import tenant_context
    from customers.models import Interaction
    from leads.models import Lead

    today = local_date(now)
    r = random.Random(SEED + 300)
    with tenant_context(tenant):
        # Originals for the revisits and leads for the follow-ups: the rep's valid leads.
        own_valid = list(
            Lead.objects.filter(owner=chosen, status="valid", customer__isnull=False)
            .exclude(external_id__startswith=CHOSEN_PREFIX)
            .order_by("-verified_at", "-id")
            .values_list("id", "customer_id", "contact_id", "company", "contact_name", "phone")[
                : CHOSEN_DUE_TODAY + CHOSEN_OVERDUE + CHOSEN_LATER + CHOSEN_REVISITS
            ]
        )
        if len(own_valid) < CHOSEN_REVISITS + 1:
            raise RuntimeError("the chosen rep has too few valid leads for their items")
        present = set(
            Lead.objects.filter(external_id__startswith=CHOSEN_PREFIX).values_list(
                "external_id", flat=True
            )
        )
        channel = catalogue["channels"][0][0]
        new = []
        specs = []  # (external id, age, revisit of)
        for n in range(CHOSEN_VERIFY):
            late = n < CHOSEN_VERIFY_LATE
            age = timedelta(hours=r.uniform(25, 60) if late else r.uniform(0.2, 23))
            specs.append((f"{CHOSEN_PREFIX}verify-{n:03d}", age, None))
        for n in range(CHOSEN_REVISITS):
            age = timedelta(hours=r.uniform(0.5, 40))
            specs.append((f"{CHOSEN_PREFIX}revisit-{n:03d}", age, own_valid[n]))
        for ext, _age, original in specs:
            if ext in present:
                continue
            n = int(ext.rsplit("-", 1)[1])
            if original is None:
                company, contact, phone = customer_name(n), person_name(r), f"+8615{n:09d}"
            else:
                company, contact, phone = original[3], original[4], original[5]
            new.append(
                Lead(
                    tenant=tenant,
                    company=company,
                    contact_name=contact,
                    phone=phone,
                    phone_key=phone,
                    company_key=company_key(company),
                    contact_key=person_key(contact),
                    message=MESSAGES[n % len(MESSAGES)],
                    channel_id=channel,
                    source_grade="ABC"[n % 3],
                    external_id=ext,
                    owner=chosen,
                    status="assigned",
                    dispatch_round=1,
                    score=60,
                    revisit_of_id=original[0] if original else None,
                )
            )
        Lead.objects.bulk_create(new)
        by_ext = {
            lead.external_id: lead
            for lead in Lead.objects.filter(external_id__startswith=CHOSEN_PREFIX)
        }
        for ext, age, _original in specs:
            lead = by_ext[ext]
            lead.created_at = now - age
            lead.assigned_at = lead.created_at + timedelta(seconds=5)
            lead.status, lead.verification, lead.owner = "assigned", "", chosen
            lead.verified_at = lead.first_touch_at = lead.last_touch_at = None
            lead.touch_count = 0
        Lead.objects.bulk_update(
            [by_ext[s[0]] for s in specs],
            [
                "created_at",
                "assigned_at",
                "status",
                "verification",
                "owner",
                "verified_at",
                "first_touch_at",
                "last_touch_at",
                "touch_count",
            ],
        )

        # Follow-ups: 60 due today, 140 overdue, 120 due later.
        fu_specs = []
        sources = own_valid[CHOSEN_REVISITS:] or own_valid
        for n in range(CHOSEN_DUE_TODAY + CHOSEN_OVERDUE + CHOSEN_LATER):
            if n < CHOSEN_DUE_TODAY:
                due = today
            elif n < CHOSEN_DUE_TODAY + CHOSEN_OVERDUE:
                due = today - timedelta(days=1 + (n * 7) % 15)
            else:
                due = today + timedelta(days=1 + n % 10)
            fu_specs.append(
                (uuid.uuid5(CHOSEN_NS, f"follow-up-{n}"), due, sources[n % len(sources)])
            )
        have = set(
            Interaction.objects.filter(public_id__in=[s[0] for s in fu_specs]).values_list(
                "public_id", flat=True
            )
        )
        Interaction.objects.bulk_create(
            [
                Interaction(
                    tenant=tenant,
                    public_id=pid,
                    customer_id=src[1],
                    lead_id=src[0],
                    contact_id=src[2],
                    by=chosen,
                    at=now,
                    channel="phone",
                    talk_tags=[],
                    pains=[],
                    roles=[],
                    note=NOTES[n % len(NOTES)],
                    next_action_id=catalogue["actions"][n % len(catalogue["actions"])],
                    next_action_due=due,
                )
                for n, (pid, due, src) in enumerate(fu_specs)
                if pid not in have
            ]
        )
        rows = {
            i.public_id: i
            for i in Interaction.objects.filter(public_id__in=[s[0] for s in fu_specs])
        }
        for pid, due, _src in fu_specs:
            row = rows[pid]
            row.next_action_due = due
            row.at = min(now - timedelta(minutes=5), at_local(due - timedelta(days=3), 10.5))
            row.next_done_at = None
        Interaction.objects.bulk_update(
            list(rows.values()), ["next_action_due", "at", "next_done_at"]
        )
        # Nothing else of the chosen rep's may be open (a bulk re-run never opens any).
        stray_leads = (
            Lead.objects.filter(owner=chosen, status="assigned", verification="")
            .exclude(external_id__startswith=CHOSEN_PREFIX)
            .count()
        )
        stray_follow_ups = (
            Interaction.objects.filter(by=chosen, next_done_at__isnull=True)
            .exclude(public_id__in=[s[0] for s in fu_specs])
            .count()
        )
        composition = {
            "to_verify": Lead.objects.filter(
                owner=chosen, status="assigned", verification="", revisit_of__isnull=True
            ).count(),
            "to_verify_past_24h": Lead.objects.filter(
                owner=chosen,
                status="assigned",
                verification="",
                revisit_of__isnull=True,
                assigned_at__lt=now - timedelta(hours=24),
            ).count(),
            "revisits": Lead.objects.filter(
                owner=chosen, status="assigned", verification="", revisit_of__isnull=False
            ).count(),
            "follow_ups_due_today": Interaction.objects.filter(
                by=chosen, next_done_at__isnull=True, next_action_due=today
            ).count(),
            "follow_ups_overdue": Interaction.objects.filter(
                by=chosen, next_done_at__isnull=True, next_action_due__lt=today
            ).count(),
            "follow_ups_later": Interaction.objects.filter(
                Q(next_action_due__gt=today), by=chosen, next_done_at__isnull=True
            ).count(),
            "stray_open_leads": stray_leads,
            "stray_open_follow_ups": stray_follow_ups,
        }
    composition["board_items"] = (
        composition["to_verify"]
        + composition["revisits"]
        + composition["follow_ups_due_today"]
        + composition["follow_ups_overdue"]
    )
    return composition
