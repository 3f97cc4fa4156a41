"""Replay before apply (F14): the pure replay, the run over the database, and what it must
not do (write anything)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from leads.assignment.engine import LeadFacts, Params, RepState
from leads.assignment.policy import policy_draft
from leads.assignment.replay import ReplayLead, Window, gini, replay, seed_of
from leads.assignment.replay_runs import policy_snapshot, run_replay
from leads.assignment.scoring import compile_rules
from leads.models import (
    AssignmentDecision,
    Lead,
    LeadEvent,
    ReplayRun,
    ReplayStatus,
    RepLedgerDay,
    RepProfile,
    SourceGrade,
)
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead, make_tag

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SHANGHAI = timezone.get_fixed_timezone(8 * 60)


# --- Gini ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([], 0.0),
        ([0, 0, 0], 0.0),
        ([5], 0.0),
        ([3, 3, 3, 3], 0.0),
        ([0, 0, 0, 4], 0.75),  # one of four has everything: (n - 1) / n
        ([1, 2, 3, 4, 5], 4 / 15),  # mean |xi - xj| over all pairs 1.6, / (2 × mean 3)
        ([10, 0], 0.5),
    ],
)
def test_gini_arithmetic(counts, expected):
    assert gini(counts) == pytest.approx(expected)


def test_gini_ignores_order():
    assert gini([7, 1, 4, 0]) == pytest.approx(gini([0, 1, 4, 7]))


# --- the pure replay ---------------------------------------------------------------------


def lead(i, *, at=None, open_for=timedelta(hours=2), grade="B", **facts) -> ReplayLead:
    public_id = uuid.UUID(int=1000 + i)
    return ReplayLead(
        facts=LeadFacts(id=i, created_at=at or NOW + timedelta(minutes=10 * i), **facts),
        public_id=public_id,
        label=f"lead {i}",
        open_for=open_for,
        seed=seed_of(public_id),
        grade_a=grade == "A",
    )


def window(**kw) -> Window:
    kw.setdefault("start", NOW - timedelta(days=1))
    kw.setdefault("end", NOW + timedelta(days=30))
    kw.setdefault("tz", SHANGHAI)
    return Window(**kw)


def reps(*specs) -> list[RepState]:
    return [RepState(membership_id=mid, name=f"rep{mid}", **kw) for mid, kw in specs]


def test_the_seed_comes_from_the_public_id_alone():
    public_id = uuid.uuid4()
    assert seed_of(public_id) == seed_of(str(public_id)) == int(public_id) & (2**63 - 1)
    assert 0 <= seed_of(public_id) < 2**63


def test_the_same_inputs_give_the_same_result():
    team = reps((1, {}), (2, {}), (3, {"industries": frozenset({"energy"})}))
    leads = [lead(i, industry=["energy", "other", ""][i % 3]) for i in range(60)]
    first = replay(leads, team, Params(), [], window=window())
    second = replay(leads, team, Params(), [], window=window())
    assert first.chosen == second.chosen
    assert first.received == second.received
    assert sum(first.received.values()) == 60
    # The reps handed in are not touched: the replay works on copies.
    assert all(r.received == 0 and r.open_count == 0 for r in team)


def test_a_changed_weight_moves_exactly_the_leads_it_concerns():
    # Rep 1 knows the industry, rep 2 the region; with a zero best band the top score wins.
    team = reps(
        (1, {"industries": frozenset({"energy"}), "capacity": 100}),
        (2, {"regions": frozenset({"浙江"}), "capacity": 100}),
    )
    leads = [lead(i, industry="energy", province="浙江省") for i in range(12)]
    now = Params(best_band=0.0, weight_industry=0.5, weight_region=0.3)
    draft = Params(best_band=0.0, weight_industry=0.1, weight_region=0.8)
    before = replay(leads, team, now, [], window=window())
    after = replay(leads, team, draft, [], window=window())
    assert before.chosen == [1] * 12
    assert after.chosen == [2] * 12


def test_capacity_holds_while_the_real_lead_stayed_open():
    team = reps((1, {"capacity": 2}), (2, {"capacity": 2}))
    # Four leads in ten minutes, each open for a day: the fifth finds everyone full.
    leads = [lead(i, open_for=timedelta(days=1)) for i in range(5)]
    result = replay(leads, team, Params(relax_after_minutes=0), [], window=window())
    assert sorted(result.received.values()) == [2, 2]
    assert result.chosen[4] is None
    # A lead that arrives after the backlog closed is taken again.
    later = [*leads, lead(5, at=NOW + timedelta(days=2))]
    assert replay(later, team, Params(relax_after_minutes=0), [], window=window()).chosen[5]


def test_a_waiting_lead_is_retried_after_the_wait_when_a_slot_frees():
    team = reps((1, {"capacity": 1}))
    leads = [lead(0, open_for=timedelta(minutes=5)), lead(1, at=NOW + timedelta(minutes=1))]
    result = replay(leads, team, Params(relax_after_minutes=10), [], window=window())
    assert result.chosen == [1, 1]  # the second lead waited 10 minutes, then got the rep


def test_availability_per_day_comes_from_the_ledger():
    team = reps((1, {}), (2, {}))
    day_one = NOW  # 17:00 in Shanghai
    day_two = NOW + timedelta(days=1)
    leads = [lead(i, at=day_one + timedelta(minutes=i)) for i in range(6)]
    leads += [lead(10 + i, at=day_two + timedelta(minutes=i)) for i in range(6)]
    # On day one only rep 1 has anything in the ledger: rep 2 was away. Day two has no
    # rows at all: everyone counts as available.
    ledger = {day_one.astimezone(SHANGHAI).date(): frozenset({1})}
    result = replay(leads, team, Params(), [], window=window(available=ledger))
    assert result.chosen[:6] == [1] * 6
    assert set(result.chosen[6:]) == {1, 2}


def test_a_revisit_follows_the_simulated_owner_of_its_first_lead():
    team = reps((1, {"industries": frozenset({"energy"})}), (2, {}))
    first = lead(0, industry="energy")
    again = lead(1, industry="other")
    again.revisit_of = first.facts.id
    again.facts.is_revisit = True
    result = replay([first, again], team, Params(best_band=0.0), [], window=window())
    assert result.chosen == [1, 1]


def test_a_classes_are_counted_per_rep():
    team = reps(
        (1, {}),
    )
    leads = [lead(0, grade="A"), lead(1), lead(2, grade="A")]
    result = replay(leads, team, Params(), [], window=window())
    assert result.received == {1: 3}
    assert result.received_a == {1: 2}


def test_score_rules_of_the_draft_are_applied():
    from types import SimpleNamespace

    # A hot lead (score ≥ 70) goes to the rep without a recent lead first.
    team = reps(
        (1, {"last_assigned_at": NOW - timedelta(hours=1), "capacity": 100}),
        (2, {"last_assigned_at": NOW - timedelta(days=20), "capacity": 100}),
    )
    leads = [lead(0, source_grade="A"), lead(1, source_grade="A")]
    boost = SimpleNamespace(
        public_id="r1", field="", operator="grade_is", value="A", points=40, label="A"
    )
    rules = compile_rules([boost])
    result = replay(leads, team, Params(), rules, window=window())
    assert result.chosen[0] == 2  # hot zone: 20 days without a lead


# --- the shortcut is exact: against decide() over every rep -------------------------------


def reference_replay(leads, reps, params, rules, window):
    """The replay written the obvious way: every event in time order, `decide()` over
    every rep with `available` set from the ledger, the ledger summed over the window's
    days. Slow, and the definition `replay()` must match."""
    import heapq
    from dataclasses import replace

    from leads.assignment.engine import RELAX_ORDER, apply_to_states, decide

    states = [replace(r, expected=0.0, received=0, open_count=0, zone="") for r in reps]
    by_id = {r.membership_id: r for r in states}
    chosen = [None] * len(leads)
    days: dict = {}  # day → {membership id: [expected, received]}
    releases, retries, seq = [], [], 0
    steps_all = [(), *(RELAX_ORDER[: i + 1] for i in range(len(RELAX_ORDER)))]
    first = steps_all if params.relax_after_minutes == 0 else [()]

    def decide_at(i, moment, steps):
        nonlocal seq
        day = window.day(moment)
        available = window.available.get(day)
        for rep in states:
            rep.available = available is None or rep.membership_id in available
            span = [day - timedelta(days=k) for k in range(params.fairness_window_days)]
            rep.expected = sum(days.get(d, {}).get(rep.membership_id, [0.0, 0])[0] for d in span)
            rep.received = sum(days.get(d, {}).get(rep.membership_id, [0.0, 0])[1] for d in span)
        for relaxed in steps:
            outcome = decide(
                leads[i].facts,
                states,
                params,
                rules,
                now=moment,
                seed=leads[i].seed,
                relaxed=relaxed,
                explain=False,
            )
            if outcome.chosen is None:
                continue
            total = sum(r.share_weight for r in outcome.eligible)
            ledger = days.setdefault(day, {})
            for rep in outcome.eligible:
                ledger.setdefault(rep.membership_id, [0.0, 0])[0] += rep.share_weight / total
            ledger.setdefault(outcome.chosen.membership_id, [0.0, 0])[1] += 1
            apply_to_states(outcome, moment)
            chosen[i] = outcome.chosen.membership_id
            seq += 1
            heapq.heappush(releases, (moment + leads[i].open_for, seq, chosen[i]))
            return True
        return False

    n, nxt = len(leads), 0
    while nxt < n or retries:
        arrival = leads[nxt].facts.created_at if nxt < n else None
        if retries and (arrival is None or retries[0][0] < arrival):
            moment, _s, i = heapq.heappop(retries)
            steps, is_retry = steps_all, True
        else:
            moment, i, steps, is_retry = arrival, nxt, first, False
            nxt += 1
        while releases and releases[0][0] <= moment:
            by_id[heapq.heappop(releases)[2]].open_count -= 1
        if not decide_at(i, moment, steps) and not is_retry and params.relax_after_minutes:
            seq += 1
            heapq.heappush(
                retries, (moment + timedelta(minutes=params.relax_after_minutes), seq, i)
            )
    return chosen


def random_world(seed: int, n_reps=14, n_leads=400, days=6):
    import random

    rnd = random.Random(seed)
    industries = ["manufacturing", "energy", "infrastructure", "other"]
    places = [
        ("浙江省", "宁波市"),
        ("江苏省", "苏州市"),
        ("广东省", "深圳市"),
        ("北京市", "北京市"),
    ]
    team = []
    for mid in range(1, n_reps + 1):
        regions = {rnd.choice(places)[0][:2] for _ in range(rnd.choice([0, 1, 2]))}
        team.append(
            RepState(
                membership_id=mid,
                name=f"rep{mid}",
                industries=frozenset(rnd.sample(industries, rnd.choice([0, 1, 2]))),
                regions=frozenset(regions),
                product_lines=tuple(rnd.sample(["ct", "dr", "液压"], rnd.choice([0, 1]))),
                response_tier=rnd.choice(["fast", "normal", "slow"]),
                cycle_preference=rnd.choice(["short", "long", "any"]),
                capacity=rnd.choice([None, 1, 2, 3, 0]),
                share_weight=rnd.choice([1.0, 1.0, 0.5, 2.0]),
                last_assigned_at=rnd.choice([None, NOW - timedelta(days=rnd.randint(0, 9))]),
                joined_at=NOW - timedelta(days=60),
            )
        )
    span = timedelta(days=days) / n_leads
    leads = []
    for i in range(n_leads):
        province, city = rnd.choice(places)
        item = lead(
            i,
            at=NOW + span * i + timedelta(seconds=rnd.randint(0, 30)),
            open_for=timedelta(minutes=rnd.choice([5, 30, 120, 600, 3000])),
            grade=rnd.choice("ABC"),
            industry=rnd.choice([*industries, ""]),
            province=province,
            city=city,
            message=rnd.choice(["想要 CT 报价", "液压站改造", "咨询", "请立即报价"]),
            budget=rnd.choice([None, 100_000, 900_000]),
            source_grade=rnd.choice("ABC"),
        )
        leads.append(item)
    leads.sort(key=lambda x: (x.facts.created_at, x.facts.id))
    available = {}
    for d in range(days + 1):
        day = (NOW + timedelta(days=d)).astimezone(SHANGHAI).date()
        if rnd.random() < 0.7:  # some days without ledger rows: everyone available
            available[day] = frozenset(r.membership_id for r in team if rnd.random() > 0.2)
    return team, leads, window(available=available)


@pytest.mark.parametrize(
    "params",
    [
        Params(),
        Params(best_band=0.0, weight_industry=1.0),
        Params(best_band=0.4, hot_zone_days=1, hot_zone_min_score=55, default_capacity=2),
        Params(require_region=True, require_industry=True, relax_after_minutes=0),
        Params(require_region=True, relax_after_minutes=30, default_capacity=1),
        Params(fairness_window_days=1, best_band=0.3),
        Params(fairness_window_days=2, base_score=-10, hot_zone_min_score=-100),
    ],
    ids=lambda p: "params",
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_matches_decide_over_every_rep(params, seed):
    from types import SimpleNamespace

    team, leads, where = random_world(seed)
    rules = compile_rules(
        [
            SimpleNamespace(
                public_id="r1", field="", operator="grade_is", value="A", points=25, label="A"
            ),
            SimpleNamespace(
                public_id="r2",
                field="message",
                operator="contains",
                value="立即报价",
                points=15,
                label="quote",
            ),
        ]
    )
    expected = reference_replay(leads, team, params, rules, where)
    result = replay(leads, team, params, rules, window=where)
    assert result.chosen == expected
    assert any(c is not None for c in expected)


def test_the_fit_cache_gives_what_fit_gives():
    from leads.assignment.engine import fit
    from leads.assignment.replay import _FitCache

    for seed in (1, 2):
        team, leads, _where = random_world(seed, n_leads=150)
        for params in (Params(), Params(long_cycle_budget=50_000, weight_product=0.9)):
            cache = _FitCache(leads, team, params)
            for item in leads:
                for rep in team:
                    assert cache(rep, item.facts) == fit(rep, item.facts, params)


# --- run_replay over the database ------------------------------------------------------------


def add_rep(tenant, username, **profile):
    member = MembershipFactory(tenant=tenant, role=Role.REP, user__username=username)
    with tenant_context(tenant):
        RepProfile.objects.create(tenant=tenant, membership=member, **profile)
    return member


@pytest.fixture
def team(world):
    """Tenant a: its rep plus two more, all with profiles; the decisions' leads below."""
    tenant = world.a.tenant
    with tenant_context(tenant):
        RepProfile.objects.create(tenant=tenant, membership=world.a.rep, capacity=100)
    energy = add_rep(tenant, "a-energy", industries=["energy"], capacity=100)
    zhejiang = add_rep(tenant, "a-zhejiang", provinces=["浙江省"], capacity=100)
    return {"tenant": tenant, "energy": energy, "zhejiang": zhejiang, "rep": world.a.rep}


def make_leads(tenant, n, *, hours_ago_from=48, **fields):
    channel = make_channel(tenant, name="官网表单")
    tag = make_tag(tenant, "CT")
    now = timezone.now()
    leads = []
    for i in range(n):
        created = now - timedelta(hours=hours_ago_from) + timedelta(minutes=7 * i)
        item = make_lead(
            tenant,
            channel=channel,
            company=f"公司{i:03d}",
            phone=f"+86138000{i:05d}",
            created_at=created,
            source_grade=SourceGrade.A if i % 3 == 0 else SourceGrade.B,
            **fields,
        )
        if i % 2 == 0:
            with tenant_context(tenant):
                item.tags.add(tag)
        leads.append(item)
    return leads


def simulate(tenant, *, days=30, **changes):
    """A queued ReplayRun of the draft with `changes` made to it (not run yet)."""
    from leads.assignment.policy import policy_active

    with tenant_context(tenant):
        draft = policy_draft(tenant=tenant, acting_member=None)
        for name, value in changes.items():
            setattr(draft, name, value)
        draft.save()
        return ReplayRun.objects.create(
            tenant=tenant,
            policy=draft,
            baseline=policy_active(),
            days=days,
            parameters=policy_snapshot(draft),
        )


def execute(run):
    with tenant_context(run.tenant):
        run = ReplayRun.objects.select_related("policy", "baseline").get(pk=run.pk)
        return run_replay(run)


def _table_counts():
    return {
        model.__name__: model.objects.count()
        for model in (Lead, AssignmentDecision, RepLedgerDay, LeadEvent, RepProfile)
    }


def test_run_replay_is_deterministic(team):
    tenant = team["tenant"]
    make_leads(tenant, 24, industry="energy", province="浙江省")
    run = simulate(tenant, weight_industry=0.1, weight_region=0.9, best_band=0.0)
    first = execute(run)
    assert first.status == ReplayStatus.DONE, first.error
    with tenant_context(tenant):
        ReplayRun.objects.filter(pk=run.pk).update(status=ReplayStatus.QUEUED, result={})
    second = execute(run)

    def stable(result):
        return {k: v for k, v in result.items() if k not in ("elapsed", "load_seconds")}

    assert stable(first.result) == stable(second.result)
    assert first.result["leads"] == 24


def test_a_draft_with_another_weight_moves_the_expected_leads(team):
    tenant = team["tenant"]
    leads = make_leads(tenant, 9, industry="energy", province="浙江省")
    with tenant_context(tenant):
        from leads.assignment.policy import policy_active

        active = policy_active()
        active.best_band = 0.0  # (a test shortcut: versions are never edited in the product)
        active.save()
    run = simulate(tenant, weight_industry=0.1, weight_region=0.9, best_band=0.0)
    result = execute(run).result
    rows = {r["name"]: r for r in result["reps"]}
    energy, zhejiang = team["energy"].display_name, team["zhejiang"].display_name
    assert rows[energy]["now"] == 9 and rows[energy]["draft"] == 0
    assert rows[zhejiang]["now"] == 0 and rows[zhejiang]["draft"] == 9
    assert rows[energy]["a_now"] == 3 and rows[zhejiang]["a_draft"] == 3
    assert result["moved_total"] == 9
    assert {m["lead"] for m in result["moved"]} == {str(x.public_id) for x in leads}
    assert {(m["from"], m["to"]) for m in result["moved"]} == {(energy, zhejiang)}
    # Everything to one rep of three, now and under the draft: the same Gini.
    assert result["gini_now"] == result["gini_draft"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["baseline_version"] == 1


def test_the_replay_touches_no_data(team, django_assert_max_num_queries):
    tenant = team["tenant"]
    leads = make_leads(tenant, 30, industry="energy", province="浙江省")
    with tenant_context(tenant):
        RepLedgerDay.objects.create(
            tenant=tenant,
            membership=team["energy"],
            day=timezone.localdate(leads[0].created_at, tenant.tzinfo),
            expected=1.5,
            received=2,
        )
    run = simulate(tenant, weight_region=2.0)
    with tenant_context(tenant):
        before = _table_counts()
        owners = dict(Lead.objects.values_list("pk", "owner_id"))
    # Loading is bulk: the same handful of queries whatever the number of leads.
    with django_assert_max_num_queries(18):
        done = execute(run)
    assert done.status == ReplayStatus.DONE, done.error
    with tenant_context(tenant):
        assert _table_counts() == before
        assert dict(Lead.objects.values_list("pk", "owner_id")) == owners
        assert RepLedgerDay.objects.get().received == 2


def test_a_failing_replay_records_its_error(team):
    tenant = team["tenant"]
    make_leads(tenant, 3)
    run = simulate(tenant)
    with tenant_context(tenant):
        ReplayRun.objects.filter(pk=run.pk).update(
            parameters={**run.parameters, "params": {**run.parameters["params"], "best_band": "x"}}
        )
    failed = execute(run)
    assert failed.status == ReplayStatus.FAILED
    assert "TypeError" in failed.error
    assert failed.finished_at is not None


def test_leads_outside_the_window_are_not_replayed(team):
    tenant = team["tenant"]
    make_leads(tenant, 4, hours_ago_from=24 * 10)  # ten days ago
    make_leads(tenant, 2, hours_ago_from=5)
    result = execute(simulate(tenant, days=7)).result
    assert result["leads"] == 2
    assert result["window"]["days"] == 7
