"""Assignment bench (F8–F10, F14): one decision among 200 reps, one dispatch through the
database, and the replay of 100,000 leads over 200 reps.

    .venv/bin/python bench/assign.py [--reps 200] [--leads 100000] [--days 30]

Fills tenant `bench-assign` (or --tenant) with --reps reps whose profiles vary
(industries, provinces, product lines, response speed, deal cycle, caps, share weights)
and --leads leads spread evenly over the last --days days (bulk inserts; idempotent: only
what is missing is added), assigned and verified the way a working team would (see
`LeadPlan`), plus the fairness ledger of those days (about 8 % of the reps away each day).
Then it measures and prints JSON:

- `decide`: the pure `leads.assignment.engine.decide()` among every rep (profiles from the
  database, every rep eligible: the worst case), with the explanation the worker stores;
  median / p95 over 1,000 decisions, one lead each from the generated ones;
- `dispatch`: `leads.assignment.dispatch.dispatch()` through the database, as the intake worker
  calls it (its own tenant transaction: lock, policy, rep states, decision, ledger,
  timeline, notification); median / p95 over 200 new leads;
- `replay`: `leads.assignment.replay_runs.run_replay()` of a draft (region weight changed) over the
  window: both replays (the active version and the draft), loading included, and each
  part timed on its own.

See bench/README.md ("Assignment").
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from datetime import timedelta

from common import (
    Reference,
    emit,
    log,
    prepare_database,
    reference_sample,
    relative,
    setup_django,
    spread,
    vacuum_analyze,
)

BATCH = 5_000
PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
EXTERNAL_PREFIX = "bench-assign-"
DISPATCH_PREFIX = "bench-dispatch-"
SEED = 2026

INDUSTRIES = ["manufacturing", "energy", "infrastructure", "other"]
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
PRODUCTS = ["DR", "CT", "超声", "监护仪", "液压", "气动", "伺服", "PLC", "变频器", "储能"]
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
TAGS = ["紧急", "招标", "样品", "大客户", "复购", "海外", "DR", "CT", "液压", "储能"]
BUDGETS = ["", "", "10万", "30万", "50-100万", "80万", "¥1,200,000", "200万", "5万"]
MESSAGES = [
    "想了解一下产品报价和交期。",
    "请立即报价，我们下周开会定方案。",
    "医院准备采购一台{p}，请联系。",
    "产线改造需要{p}，预算已批。",
    "有没有{p}的案例？",
    "咨询售后维保。",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def external_id(i: int) -> str:
    return f"{EXTERNAL_PREFIX}{i:07d}"


def ensure_reps(tenant, slug: str, count: int):
    """`count` reps with varied profiles (deterministic), and the manager."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from crm.models import Membership, Role
    from crm.tenancy import tenant_context
    from leads.models import RepProfile

    User = get_user_model()
    names = [f"{slug}-rep{n:03d}" for n in range(1, count + 1)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password(PASSWORD)
    User.objects.bulk_create(
        [
            User(username=u, password=password, first_name=u[-3:], last_name=SURNAMES[n % 20])
            for n, u in enumerate(names)
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
            Membership(tenant=tenant, user_id=users[u], role=Role.REP)
            for u in names
            if users[u] not in seated
        ]
    )
    reps = list(
        Membership.objects.in_tenant(tenant)
        .filter(user_id__in=users.values())
        .select_related("user")
        .order_by("user__username")
    )
    rnd = random.Random(SEED)
    with tenant_context(tenant):
        have = set(RepProfile.objects.values_list("membership_id", flat=True))
        profiles = []
        for m in reps:
            industries = rnd.sample(INDUSTRIES, rnd.choice([1, 1, 2]))
            places = rnd.sample(CITIES, rnd.choice([1, 2, 3]))
            profile = RepProfile(
                tenant=tenant,
                membership=m,
                industries=industries,
                provinces=[p for p, _ in places],
                cities=[c for _, c in places][:1],
                product_lines=rnd.sample(PRODUCTS, rnd.choice([0, 1, 2])),
                response_tier=rnd.choice(["fast", "normal", "normal", "slow"]),
                cycle_preference=rnd.choice(["short", "long", "any", "any"]),
                capacity=rnd.choice([None, None, None, 6, 10, 12]),
                share_weight=rnd.choice([1.0, 1.0, 1.0, 0.5, 1.5, 2.0]),
            )
            if m.pk not in have:
                profiles.append(profile)
        RepProfile.objects.bulk_create(profiles)
    return reps


def ensure_catalogue(tenant):
    from leads.models import Channel, Tag

    channels = []
    for name, kind in CHANNELS:
        channel = Channel.objects.filter(name=name).first()
        channels.append(channel or Channel.objects.create(tenant=tenant, name=name, type=kind))
    tags = [Tag.objects.get_or_create(tenant=tenant, name=name)[0] for name in TAGS]
    return channels, tags


class LeadPlan:
    """Lead i's content and history, deterministic in i (and the window's end).

    95 % are assigned a few seconds after arrival; each stays open (unverified) for a
    log-normal time (median 3 h, a long tail to days), so at any moment a rep holds a few
    open leads against a cap of 6–12; what is still open at the end stays assigned. 5 %
    were never assigned (pooled)."""

    def __init__(self, end, days: int, count: int, reps):
        self.end = end
        self.start = end - timedelta(days=days)
        self.step = (end - self.start) / count
        self.reps = reps

    def build(self, i: int, tenant, channels, lead_model):
        rnd = random.Random(SEED * 1_000_003 + i)
        created = self.start + self.step * i
        province, city = rnd.choice(CITIES)
        product = rnd.choice(PRODUCTS)
        phone = f"+861{3 + i % 6}{i:09d}"
        fields = {
            "tenant": tenant,
            "company": f"{city[:2]}{SURNAMES[i % 20]}氏{product}科技有限公司",
            "contact_name": SURNAMES[(i * 7) % 20] + "工",
            "phone": phone,
            "phone_key": phone,
            "industry": rnd.choice([*INDUSTRIES, ""]),
            "province": province,
            "city": city,
            "budget": rnd.choice(BUDGETS),
            "message": rnd.choice(MESSAGES).format(p=product),
            "channel": channels[i % len(channels)],
            "source_grade": rnd.choice("AABBBBCC"),
            "external_id": external_id(i),
            "created_at": created,
            "status": "new",
        }
        if rnd.random() < 0.95:
            assigned = created + timedelta(seconds=rnd.randint(2, 8))
            open_for = timedelta(hours=min(rnd.lognormvariate(math.log(3), 1.0), 24 * 6))
            fields.update(
                owner=self.reps[rnd.randrange(len(self.reps))],
                assigned_at=assigned,
                dispatch_round=1,
                score=50,
            )
            if assigned + open_for <= self.end:
                fields.update(
                    verified_at=assigned + open_for,
                    status="valid" if rnd.random() < 0.6 else "invalid",
                )
            else:
                fields["status"] = "assigned"
        else:
            fields.update(pooled_at=created + timedelta(minutes=20), pool_reason="no_candidate")
        return lead_model(**fields), rnd


def fill(tenant, reps, channels, tags, *, leads: int, days: int) -> dict:
    from django.utils import timezone

    from crm.tenancy import tenant_context
    from leads.models import Lead

    with tenant_context(tenant):
        present = set(
            Lead.objects.filter(external_id__startswith=EXTERNAL_PREFIX).values_list(
                "external_id", flat=True
            )
        )
        first = (
            Lead.objects.filter(external_id=external_id(0))
            .values_list("created_at", flat=True)
            .first()
        )
    # Lead i arrives at start + i × (days / leads). A first run ends the window now; a
    # later run keeps the first run's window (lead 0 marks its start), so it adds nothing
    # and replays the same leads.
    end = first + timedelta(days=days) if first else timezone.now()
    plan = LeadPlan(end, days, leads, reps)
    missing = [i for i in range(leads) if external_id(i) not in present]
    log(f"leads: {len(present)} present, {len(missing)} to create")
    Tagging = Lead.tags.through
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        built = [plan.build(i, tenant, channels, Lead) for i in chunk]
        with tenant_context(tenant):
            created = Lead.objects.bulk_create([b[0] for b in built], batch_size=BATCH)
            links = []
            for (_lead, rnd), lead in zip(built, created, strict=True):
                if rnd.random() < 0.3:
                    for tag in rnd.sample(tags, rnd.choice([1, 1, 2])):
                        links.append(Tagging(lead_id=lead.pk, tag_id=tag.pk))
            Tagging.objects.bulk_create(links, batch_size=BATCH)
        log(f"  leads {start + len(chunk)}/{len(missing)}")
    return {"end": plan.end, "start": plan.start, "created": len(missing)}


def ensure_ledger(tenant, reps, start, end) -> int:
    """One ledger row per rep and day of the window; ~8 % of reps away each day (0 / 0)."""
    from crm.tenancy import tenant_context
    from leads.models import RepLedgerDay

    with tenant_context(tenant):
        tz = tenant.tzinfo
        first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
        rows = []
        day = first
        while day <= last:
            rnd = random.Random(f"{SEED}-{day}")
            for m in reps:
                away = rnd.random() < 0.08
                rows.append(
                    RepLedgerDay(
                        tenant=tenant,
                        membership=m,
                        day=day,
                        expected=0.0 if away else round(rnd.uniform(10, 22), 2),
                        received=0 if away else rnd.randint(9, 23),
                    )
                )
            day += timedelta(days=1)
        before = RepLedgerDay.objects.count()
        RepLedgerDay.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
        return RepLedgerDay.objects.count() - before


# What the bulk load wrote, vacuumed and analysed before measuring.
TABLES = (
    "leads_lead",
    "leads_lead_tags",
    "leads_repledgerday",
    "leads_repprofile",
    "crm_membership",
)


# decide() takes ~2 ms, the reference workload ~16: one reference sample per this many
# decisions keeps them alternating without the reference being most of the run.
DECIDE_PER_REFERENCE = 20


def stats(samples_ms: list[float], ref: Reference) -> dict:
    """Median and spread of the samples, the reference's taken between them, and the
    median in units of the reference's."""
    figures = spread(samples_ms, digits=3)
    reference = ref.report()
    return {
        **figures,
        "reference": reference,
        "relative": relative(figures["median_ms"], reference),
    }


def bench_decide(tenant, window_end, n: int) -> dict:
    """`decide()` with the explanation, as dispatch() calls it, every rep eligible."""
    from crm.tenancy import tenant_context
    from leads.assignment.engine import Params, decide
    from leads.assignment.policy import policy_active
    from leads.assignment.replay_runs import load_leads
    from leads.assignment.reps import rep_states
    from leads.assignment.scoring import compile_rules

    with tenant_context(tenant):
        policy = policy_active()
        params = Params.of(policy)
        rules = compile_rules(policy.rules.all())
        reps = rep_states(params, window_end)
        leads = load_leads(window_end - timedelta(days=3), window_end)
    rnd = random.Random(SEED)
    sample = rnd.sample(leads, min(n, len(leads)))
    for rep in reps:  # the worst case: nobody away, paused or full
        rep.available, rep.zone, rep.open_count = True, "", rnd.randint(0, 3)
        rep.capacity = None
    reference_sample()
    timings, eligible, chosen, ref = [], [], 0, Reference()
    for k, lead in enumerate(sample):
        started = time.perf_counter()
        outcome = decide(lead.facts, reps, params, rules, now=window_end, seed=lead.seed)
        timings.append((time.perf_counter() - started) * 1000)
        eligible.append(len(outcome.eligible))
        chosen += outcome.chosen is not None
        if k % DECIDE_PER_REFERENCE == 0:
            ref.sample()
    quick, quick_ref = [], Reference()
    for k, lead in enumerate(sample):
        started = time.perf_counter()
        decide(lead.facts, reps, params, rules, now=window_end, seed=lead.seed, explain=False)
        quick.append((time.perf_counter() - started) * 1000)
        if k % DECIDE_PER_REFERENCE == 0:
            quick_ref.sample()
    return {
        "reps": len(reps),
        "eligible_mean": round(statistics.mean(eligible), 1),
        "assigned": chosen,
        "with_explanation": stats(timings, ref),
        "without_explanation": stats(quick, quick_ref),
        "target_median_ms": 5,
    }


def bench_dispatch(tenant, channels, n: int) -> dict:
    """`dispatch()` of `n` new leads, each in its own tenant transaction, like the worker."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.tenancy import tenant_context
    from leads.assignment.dispatch import dispatch
    from leads.models import Lead

    run = time.strftime("%Y%m%d%H%M%S")
    leads = []
    with tenant_context(tenant):
        for k in range(n):
            phone = f"+8617{k:09d}"
            leads.append(
                Lead.objects.create(
                    tenant=tenant,
                    channel=channels[k % len(channels)],
                    company=f"派单测试{k:03d}有限公司",
                    phone=phone,
                    phone_key=phone,
                    industry=INDUSTRIES[k % 4],
                    province=CITIES[k % len(CITIES)][0],
                    city=CITIES[k % len(CITIES)][1],
                    message="请立即报价",
                    budget="60万",
                    source_grade="AB"[k % 2],
                    external_id=f"{DISPATCH_PREFIX}{run}-{k:03d}",
                )
            )
    reference_sample()
    timings, queries, outcomes, ref = [], [], {}, Reference()
    for lead in leads:
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            with tenant_context(tenant):
                lead = Lead.objects.select_related("channel", "tenant").get(pk=lead.pk)
                decision = dispatch(lead)
            timings.append((time.perf_counter() - started) * 1000)
        queries.append(len(ctx.captured_queries))
        outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1
        ref.sample()
    return {
        **stats(timings, ref),
        "queries_median": statistics.median(queries),
        "outcomes": outcomes,
        "candidates_json_kb": round(len(str(decision.candidates).encode()) / 1024, 1),
    }


REPLAY_REFERENCE_SAMPLES = 20


def bench_replay(tenant, end, days: int) -> dict:
    """run_replay() of a draft with the region weight raised, plus its parts timed alone."""
    from crm.tenancy import tenant_context
    from leads.assignment.engine import Params
    from leads.assignment.policy import policy_active, policy_draft
    from leads.assignment.replay import replay
    from leads.assignment.replay_runs import (
        load_leads,
        load_reps,
        load_window,
        policy_snapshot,
        run_replay,
    )
    from leads.assignment.scoring import compile_rules
    from leads.models import ReplayRun

    with tenant_context(tenant):
        draft = policy_draft(tenant=tenant, acting_member=None)
        draft.weight_region, draft.weight_industry = 0.8, 0.3
        draft.save()
        run = ReplayRun.objects.create(
            tenant=tenant,
            policy=draft,
            baseline=policy_active(),
            days=days,
            parameters=policy_snapshot(draft),
            created_at=end,
        )
        log("replay: the whole run (both policies)")
        reference_sample()
        ref = Reference()
        ref.sample(REPLAY_REFERENCE_SAMPLES)
        started = time.perf_counter()
        run_replay(run)
        total = time.perf_counter() - started
        ref.sample(REPLAY_REFERENCE_SAMPLES)
        if run.status != "done":
            raise RuntimeError(run.error)

        log("replay: the parts on their own")
        start = end - timedelta(days=days)
        t0 = time.perf_counter()
        leads = load_leads(start, end)
        t1 = time.perf_counter()
        reps = load_reps(start, tenant.tzinfo)
        window = load_window(start, end, tenant.tzinfo)
        t2 = time.perf_counter()
        baseline = run.baseline
        params, rules = Params.of(baseline), compile_rules(baseline.rules.all())
        t3 = time.perf_counter()
        result = replay(leads, reps, params, rules, window=window)
        t4 = time.perf_counter()
    result_summary = run.result
    return {
        "leads": result_summary["leads"],
        "reps": len(result_summary["reps"]),
        "seconds_total": round(total, 2),
        "seconds_reported_by_run": result_summary["elapsed"],
        "seconds_load_leads": round(t1 - t0, 2),
        "seconds_load_reps_and_ledger": round(t2 - t1, 2),
        "seconds_one_policy": round(t4 - t3, 2),
        "ms_per_lead_one_policy": round((t4 - t3) * 1000 / max(len(leads), 1), 4),
        "unassigned_now": result_summary["unassigned_now"],
        "unassigned_draft": result_summary["unassigned_draft"],
        "moved_total": result_summary["moved_total"],
        "gini_now": result_summary["gini_now"],
        "gini_draft": result_summary["gini_draft"],
        "assigned_one_policy": sum(1 for c in result.chosen if c is not None),
        # Sampled just before and just after the whole run (one run: no spread of its own).
        "reference": ref.report(),
        "target_seconds": 30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tenant", default="bench-assign")
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--dispatches", type=int, default=200)
    parser.add_argument("--skip", nargs="*", default=[], help="decide, dispatch and/or replay")
    args = parser.parse_args()

    setup_django()
    prepare_database()

    from crm.models import Tenant
    from crm.tenancy import tenant_context

    started = time.perf_counter()
    tenant, _ = Tenant.objects.get_or_create(
        slug=args.tenant, defaults={"name": "Bench 派单", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):  # memberships are row-level secured too
        reps = ensure_reps(tenant, args.tenant, args.reps)
    with tenant_context(tenant):
        channels, tags = ensure_catalogue(tenant)
    filled = fill(tenant, reps, channels, tags, leads=args.leads, days=args.days)
    ledger_rows = ensure_ledger(tenant, reps, filled["start"], filled["end"])
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)
    vacuumed = time.perf_counter()

    out = {
        "bench": "assign",
        "tenant": args.tenant,
        "load_average_before_measuring": [round(x, 2) for x in os.getloadavg()],
        "generation": {
            "seconds": round(loaded - started, 2),
            "vacuum_analyze_seconds": round(vacuumed - loaded, 2),
            "leads_created": filled["created"],
            "ledger_rows_created": ledger_rows,
            "window": [filled["start"].isoformat(), filled["end"].isoformat()],
        },
    }
    if "decide" not in args.skip:
        log(f"decide: {args.decisions} decisions among {len(reps)} reps")
        out["decide"] = bench_decide(tenant, filled["end"], args.decisions)
    if "replay" not in args.skip:
        out["replay"] = bench_replay(tenant, filled["end"], args.days)
    if "dispatch" not in args.skip:
        # Last: its new leads and decisions are the only writes the bench makes.
        log(f"dispatch: {args.dispatches} leads through the database")
        out["dispatch"] = bench_dispatch(tenant, channels, args.dispatches)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    emit(out)


if __name__ == "__main__":
    main()
