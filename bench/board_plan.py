"""The board bench's plan of lead i (bench/board.py): who it is, what became of it
(pooled, open, invalid with a reason, or valid and linked to its customer and contact),
its times, and the chain of follow-ups of a valid lead, all deterministic in i."""

from __future__ import annotations

import json
import math
import random
import uuid
from datetime import datetime, timedelta

from board_data import (
    BRANDS,
    BUDGETS,
    CITIES,
    CONTACT_REASONS,
    INDUSTRIES,
    K_WEIGHTS,
    MESSAGES,
    NOTES,
    OPEN_WINDOW_DAYS,
    P_CUSTOMER_ONLY,
    P_OPEN_CHAIN,
    P_POOLED,
    P_VALID,
    P_VALID_SUSPECT,
    REPS,
    ROLES,
    SEED,
    SIZE,
    TITLES,
    TOUCH_CHANNELS,
    add_working_days,
    at_local,
    company_key,
    contact_phone,
    contacts_of,
    customer_name,
    customer_owner,
    external_id,
    local_date,
    person_key,
    person_name,
    rng,
    weighted,
)
from words import TRADES


class Plan:
    """Lead i, deterministic in i: who it is (`identity`), what became of it, its times."""

    def __init__(self, start: datetime, end: datetime, reps, catalogue, chosen_index: int):
        self.start, self.end = start, end
        self.step = (end - start) / SIZE.leads
        self.reps = reps
        self.cat = catalogue
        self.chosen = chosen_index
        self.channel_pairs = [((pk, grade), w) for pk, grade, w in catalogue["channels"]]
        self.reason_pairs = [
            ((pk, name), 3 if name in CONTACT_REASONS else (4 if name == "重复咨询" else 2))
            for pk, name in catalogue["reasons"]
        ]
        self.duplicate_reason = next(
            ((pk, name) for pk, name in catalogue["reasons"] if name == "重复咨询"),
            catalogue["reasons"][0],
        )
        # Each rep's pace: a multiplier of the time to verify (0.5 quick … 3 slow).
        r = random.Random(SEED + 7)
        self.pace = [r.choice([0.5, 0.8, 1, 1, 1, 1.3, 1.6, 2.2, 3]) for _ in range(REPS)]

    @staticmethod
    def original_of(i: int) -> int | None:
        """Lead i is a revisit (1 in 20) of an earlier lead within ~11 days."""
        if i % 20 != 11 or i < 70_000:
            return None
        return i - 50 - (i * 7919) % 60_000

    def identity(self, i: int) -> dict:
        """Who lead i is: a customer's contact (for a valid lead) or anyone, and its owner."""
        r = rng(i)
        roll = r.random()
        suspect = r.random() < 1 / 33
        pooled = roll < P_POOLED
        valid = not pooled and r.random() < (P_VALID_SUSPECT if suspect else P_VALID)
        if valid:
            j = r.randrange(SIZE.customers)
            k = r.randrange(contacts_of(j))
            owner = customer_owner(j) if r.random() < 0.88 else r.randrange(REPS)
            person = {
                "customer": j,
                "contact": k,
                "phone": contact_phone(j, k),
                "company": customer_name(j),
            }
        else:
            short, _p, _c = r.choice(CITIES)
            company = f"{short}{r.choice(BRANDS)}{r.choice(BRANDS)}{r.choice(TRADES)}有限公司"
            person = {
                "customer": None,
                "contact": None,
                "phone": f"+8613{i:09d}",
                "company": company,
            }
            owner = None if pooled else r.randrange(REPS)
        person["name"] = person_name(r)
        return {
            "r": r,
            "pooled": pooled,
            "valid": valid,
            "suspect": suspect,
            "owner": owner,
            **person,
        }

    def build(self, i: int, lead_id: int, cmap, tenant_id: int):
        """(the lead's row values by column, its follow-ups' timeline) — see fill_leads."""
        me = self.identity(i)
        r = me["r"]
        original = self.original_of(i)
        if original is not None:
            first = self.identity(original)
            keep = {k: first[k] for k in ("customer", "contact", "phone", "company", "name")}
            me.update(keep)
            me["owner"] = first["owner"] if first["owner"] is not None else me["owner"]
            me["pooled"] = me["owner"] is None
            me["valid"] = first["valid"] and not me["pooled"] and r.random() < 0.6
        jitter = timedelta(seconds=r.uniform(0, 10)) if i else timedelta(0)
        created = min(self.start + self.step * i + jitter, self.end - timedelta(minutes=1))
        channel, grade = weighted(r, self.channel_pairs)
        if r.random() < 0.25:
            grade = r.choice("ABC")
        _short, province, city = CITIES[(me["customer"] or i) % len(CITIES)]
        row = {
            "id": lead_id,
            "tenant_id": tenant_id,
            "public_id": uuid.UUID(int=r.getrandbits(128), version=4),
            "company": me["company"],
            "contact_name": me["name"],
            "phone": me["phone"],
            "industry": r.choice(INDUSTRIES),
            "message": r.choice(MESSAGES),
            "industry_remark": "",
            "email": "",
            "title": r.choice(TITLES),
            "province": province,
            "city": city,
            "budget": r.choice(BUDGETS),
            "external_id": external_id(i),
            "utm": '{"utm_source": "baidu"}' if r.random() < 0.2 else "{}",
            "channel_id": channel,
            "source_grade": grade,
            "status": "new",
            "owner_id": None,
            "is_suspect": me["suspect"],
            "suspect_reasons": '[{"code": "test_entry"}]' if me["suspect"] else "[]",
            "intake_issues": "[]",
            "registry_status": "",
            "phone_key": me["phone"],
            "company_key": company_key(me["company"]),
            "contact_key": person_key(me["name"]),
            "created_at": created,
            "score": r.randint(30, 95),
            "dispatch_round": 0,
            "pool_reason": "",
            "touch_count": 0,
            "verification": "",
        }
        chain = None
        if me["pooled"]:
            row.update(pooled_at=created + timedelta(minutes=20), pool_reason="no_candidate")
            return row, chain
        rep = me["owner"]
        assigned = created + timedelta(seconds=r.uniform(2, 8))
        row.update(
            owner_id=self.reps[rep].pk, assigned_at=assigned, dispatch_round=1, status="assigned"
        )
        delay = timedelta(hours=min(r.lognormvariate(math.log(1.2 * self.pace[rep]), 1.4), 24 * 10))
        age = self.end - assigned
        if delay >= age and rep == self.chosen:
            delay = age * r.uniform(0.3, 0.9)  # the chosen rep's open items come later
        early_touch = r.random() < 0.3
        first_touch = assigned + (delay * r.uniform(0.2, 0.9) if early_touch else delay)
        if delay >= age:  # still open at the end
            if first_touch < self.end:
                row.update(
                    first_touch_at=first_touch,
                    last_touch_at=first_touch,
                    touch_count=1,
                    first_touch_late=first_touch - assigned > timedelta(hours=24),
                )
            return row, chain
        verified = assigned + delay
        row.update(
            verified_at=verified,
            verified_by_id=self.reps[rep].pk,
            first_touch_at=first_touch,
            last_touch_at=verified,
            touch_count=2 if early_touch else 1,
            first_touch_late=first_touch - assigned > timedelta(hours=24),
        )
        if not me["valid"]:
            if original is not None and r.random() < 0.8:
                reason = self.duplicate_reason
            else:
                reason = weighted(r, self.reason_pairs)
            row.update(
                status="invalid",
                invalid_reason_id=reason[0],
                verification="invalid_contact"
                if reason[1] in CONTACT_REASONS
                else "invalid_not_target",
            )
            return row, chain
        customer_ids, contact_ids, _levels = cmap
        row.update(
            status="valid",
            verification="valid_visit" if r.random() < 0.4 else "valid_more_info",
            customer_id=customer_ids[me["customer"]],
            contact_id=contact_ids[me["phone"]],
        )
        chain = {
            "k": weighted(r, list(K_WEIGHTS.items())),
            "seed": SEED * 7_000_003 + i,  # distinct per lead: so are the uuids drawn
            "rep": rep,
            "on_lead": r.random() >= P_CUSTOMER_ONLY,
        }
        return row, chain

    def follow_ups(self, row: dict, chain: dict, tenant_id: int):
        """The chain's follow-ups as Interaction values; updates the lead's touches."""
        r = random.Random(chain["seed"])
        k = chain["k"]
        if k == 0:
            return []
        verified = row["verified_at"]
        works = [r.choice([1, 1, 2, 2, 3, 3, 3, 5, 7]) for _ in range(k)]
        roll = r.random()
        first_gap = (
            timedelta(minutes=r.uniform(10, 24 * 60))
            if roll < 0.7
            else timedelta(days=r.uniform(1, 3))
            if roll < 0.9
            else timedelta(days=r.uniform(3, 10))
        )
        gaps = [first_gap] + [
            timedelta(days=w * 1.4 * r.uniform(0.6, 1.3), hours=r.uniform(-3, 3))
            for w in works[:-1]
        ]
        gaps = [max(g, timedelta(minutes=5)) for g in gaps]
        room = self.end - verified - timedelta(minutes=5)
        total = sum(gaps, timedelta())
        if total > room:
            scale = max(room, timedelta(0)) / total
            gaps = [g * scale for g in gaps]
        moments = []
        at = verified
        for g in gaps:
            at = at + g
            moments.append(at)
        by = self.reps[chain["rep"]].pk
        lead_id = row["id"] if chain["on_lead"] else None
        out = []
        end_day = local_date(self.end)
        tags, pains, actions, rules = (
            self.cat["talk_tags"],
            self.cat["pains"],
            self.cat["actions"],
            self.cat["rules"],
        )
        for n, (at, w) in enumerate(zip(moments, works, strict=True)):
            due = add_working_days(local_date(at), w)
            if n < k - 1:
                done = moments[n + 1]
            elif (
                chain["rep"] != self.chosen
                and due >= end_day - timedelta(days=OPEN_WINDOW_DAYS)
                and r.random() < P_OPEN_CHAIN
            ):
                done = None
            else:
                done = min(
                    self.end, max(at + timedelta(hours=1), at_local(due, r.uniform(-30, 20)))
                )
            picked = r.sample(tags, r.choice([0, 1, 1, 2])) if tags else []
            note = r.choice(NOTES)
            out.append(
                (
                    tenant_id,
                    uuid.UUID(int=r.getrandbits(128), version=4),
                    row["customer_id"],
                    lead_id,
                    row["contact_id"],
                    by,
                    at,
                    weighted(r, TOUCH_CHANNELS),
                    json.dumps([t for t, _a in picked], ensure_ascii=False),
                    json.dumps(
                        r.sample(pains, r.choice([0, 0, 1, 2])) if pains else [], ensure_ascii=False
                    ),
                    json.dumps(r.sample(ROLES, r.choice([0, 1, 1, 2]))),
                    note,
                    r.choice(actions),
                    due,
                    done,
                    next((s for kw, s in rules if kw in note), ""),
                    any(a for _t, a in picked)
                    or any(wd in note for wd in ("确认", "同意", "安排")),
                    "follow_up",
                )
            )
        if lead_id is not None:
            row["touch_count"] += len(out)
            row["last_touch_at"] = max(row["last_touch_at"], moments[-1])
        return out
