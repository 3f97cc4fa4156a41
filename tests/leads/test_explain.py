"""“Why this rep” in words (F12): every outcome from real dispatches, every verdict once
from a hand-written decision, and a rep's own view (`why_not`) that names nobody else."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm.models import Membership, Role
from crm.tenancy import tenant_context
from leads.assignment.dispatch import (
    dispatch_due,
    dispatch_new_lead,
    lead_reassign,
    lead_return_to_pool,
)
from leads.assignment.explain import explain, why_not
from leads.assignment.explain_texts import number
from leads.assignment.policy import policy_draft, policy_publish
from leads.models import (
    AssignmentDecision,
    DecisionKind,
    DecisionOutcome,
    Lead,
    PoolReason,
    RepProfile,
)
from tests.leads.factories import make_channel, make_lead, make_rep

pytestmark = pytest.mark.django_db


def dispatch(lead: Lead, **kwargs) -> AssignmentDecision:
    with tenant_context(lead.tenant):
        return dispatch_new_lead(lead, **kwargs)


def words(decision: AssignmentDecision, **kwargs):
    """The explanation, read inside the decision's tenant (it loads the policy)."""
    with tenant_context(decision.tenant):
        decision = AssignmentDecision.objects.select_related("policy", "chosen__user").get(
            pk=decision.pk
        )
        return explain(decision, **kwargs)


def rep_words(decision: AssignmentDecision, membership):
    with tenant_context(decision.tenant):
        decision = AssignmentDecision.objects.select_related("policy").get(pk=decision.pk)
        return why_not(decision, membership)


def text_of(explanation) -> str:
    return "\n".join([explanation.headline, *explanation.lines])


def row(explanation, membership):
    return next(c for c in explanation.candidates if c.membership_id == membership.pk)


def set_profile(membership, **fields):
    with tenant_context(membership.tenant):
        RepProfile.objects.update_or_create(
            membership=membership, defaults={"tenant": membership.tenant, **fields}
        )


def publish(tenant, acting_member=None, **params):
    with tenant_context(tenant):
        draft = policy_draft(tenant=tenant, acting_member=acting_member)
        for name, value in params.items():
            setattr(draft, name, value)
        draft.save()
        return policy_publish(tenant=tenant, acting_member=acting_member, draft=draft)


@pytest.fixture
def channel(world):
    # Not named "官网表单": the default rule for the website would add 30 points.
    return make_channel(world.a.tenant, name="展会名片")


# -- outcomes, from real dispatches -------------------------------------------------------------


def test_a_lone_rep_gets_the_lead_and_the_words_say_so(world, channel, english):
    decision = dispatch(make_lead(world.a.tenant, channel))
    result = words(decision)
    name = world.a.rep.display_name
    assert result.headline == f"Assigned to {name}"
    assert "Lead score 50: the base score, no rule matched." in result.lines
    assert any(line.startswith(f"Fit of {name}: 1 + response speed +0.1") for line in result.lines)
    assert f"{name} was the only rep." in result.lines
    assert "Decided under assignment policy version 1." in result.lines
    assert [c.text for c in result.candidates] == ["Chosen"]


def test_the_score_line_lists_each_matching_rule_with_its_points(world, english):
    website = make_channel(world.a.tenant, name="官网表单", default_grade="A")
    lead = make_lead(world.a.tenant, website, source_grade="A", message="请立即报价")
    result = words(dispatch(lead))
    line = next(line for line in result.lines if line.startswith("Lead score"))
    assert line.startswith("Lead score 110: base 50, ")
    for rule in ("官网来源 +30", "含“立即报价” +20", "A 类来源 +10"):
        assert rule in line
    assert sorted(p for _label, p in result.score_parts) == [10, 20, 30]


def test_a_better_fit_wins_and_the_others_are_below_the_best_band(world, channel, english):
    t = world.a.tenant
    expert = make_rep(t, "expert", industries=["manufacturing"])
    plain = make_rep(t, "plain")
    decision = dispatch(make_lead(t, channel, industry="manufacturing"))
    assert decision.chosen == expert
    result = words(decision)
    name = expert.display_name
    # 50 × (1 + 0.5 industry + 0.1 response + 0.1 cycle) = 85; the others 50 × 1.2 = 60.
    assert any("industry match +0.5" in line and "= 85." in line for line in result.lines)
    assert f"{name} had the top score (85); nobody else was within 15% of it." in result.lines
    assert row(result, plain).text == "Score 60, below the best band (from 72.25)"
    assert row(result, world.a.rep).text == "Score 60, below the best band (from 72.25)"
    assert row(result, expert).chosen and row(result, expert).score_text == "85"
    # The lines name the chosen rep only; the candidates table has everyone.
    assert plain.display_name not in text_of(result)


def test_equals_in_the_band_are_decided_by_shortfall_then_by_the_seeded_draw(
    world, channel, english
):
    t = world.a.tenant
    make_rep(t, "r1")
    make_rep(t, "r2")
    # Three equal reps with no history: a tie, drawn with the recorded seed.
    first = dispatch(make_lead(t, channel, phone="+8613900000001"))
    result = words(first)
    name = first.chosen.display_name
    assert "3 reps were within 15% of the top score 60 (from 51)" in result.lines[2]
    assert (
        f"3 reps had the same shortfall: a draw with seed {first.seed} picked {name} "
        "(the same seed always picks the same rep)."
    ) in result.lines
    losers = [c for c in result.candidates if not c.chosen]
    assert {c.text for c in losers} == {
        "In the best band with the same shortfall: not picked by the draw"
    }
    # Two more leads: the third goes to the one rep still without a lead, by shortfall.
    second = dispatch(make_lead(t, channel, phone="+8613900000002"))
    third = dispatch(make_lead(t, channel, phone="+8613900000003"))
    assert len({first.chosen_id, second.chosen_id, third.chosen_id}) == 3
    result = words(third)
    name = third.chosen.display_name
    assert (
        f"{name}: 0 received against 0.67 expected over the last 30 days (shortfall 0.67), "
        "the largest in the band."
    ) in result.lines
    assert not any("draw" in line for line in result.lines)
    for other in result.others:
        assert other.text == "In the best band but with a smaller shortfall (-0.33 against 0.67)"


def test_the_hot_zone_goes_first_for_a_hot_lead(world, english):
    t = world.a.tenant
    website = make_channel(t, name="官网表单")  # +30: the lead scores 80 ≥ 70
    idle = make_rep(t, "idle", last_assigned_at=timezone.now() - timedelta(days=10))
    busy = make_rep(t, "busy", industries=["energy"], last_assigned_at=timezone.now())
    set_profile(world.a.rep, last_assigned_at=timezone.now())
    decision = dispatch(make_lead(t, website, industry="energy"))
    assert decision.chosen == idle and decision.hot_zone
    result = words(decision)
    assert (
        "The lead scores at least 70, so the reps without a new lead for 7 days went first: "
        "1 of 3 eligible reps."
    ) in result.lines
    assert row(result, busy).text == "Score 136, but reps without a lead for 7 days went first"


def test_nobody_eligible_waits_and_says_when_it_is_tried_again(world, channel, english):
    set_profile(world.a.rep, is_available=False)
    decision = dispatch(make_lead(world.a.tenant, channel))
    assert decision.outcome == DecisionOutcome.WAITING
    result = words(decision)
    assert result.headline == "Waiting for an eligible rep"
    assert "No rep was eligible: 1 unavailable." in result.lines
    assert (
        "Dispatch is tried again after 10 minutes, with optional criteria dropped one by one."
        in result.lines
    )
    assert row(result, world.a.rep).text == "Unavailable (leave or away)"


def test_still_nobody_after_the_wait_pools_it(world, channel, english):
    set_profile(world.a.rep, capacity=0)
    lead = make_lead(world.a.tenant, channel)
    waiting = dispatch(lead)
    with tenant_context(world.a.tenant):
        dispatch_due(now=waiting.decided_at + timedelta(minutes=11))
        pooled = AssignmentDecision.objects.filter(lead=lead).first()
    assert pooled.outcome == DecisionOutcome.POOLED
    result = words(pooled, pool_reason=PoolReason.NO_CANDIDATE)
    assert result.headline == "Put in the pool"
    assert "No rep was eligible: 1 at capacity." in result.lines
    assert "The managers were told: it waits in the pool to be assigned by hand." in result.lines
    assert row(result, world.a.rep).text == "At capacity 0/0"
    # Without the timeline's reason, the candidates say the same.
    assert words(pooled).headline == "Put in the pool"


def test_dropped_criteria_are_named(world, channel, english):
    t = world.a.tenant
    publish(t, require_region=True)
    set_profile(world.a.rep, provinces=["广东省"])
    lead = make_lead(t, channel, province="浙江省", city="宁波市")
    waiting = dispatch(lead)
    assert row(words(waiting), world.a.rep).text == "Not in the lead's region"
    with tenant_context(t):
        dispatch_due(now=waiting.decided_at + timedelta(minutes=11))
        decision = AssignmentDecision.objects.filter(lead=lead).first()
    assert decision.kind == DecisionKind.RETRY and decision.outcome == DecisionOutcome.ASSIGNED
    result = words(decision)
    assert (
        "Nobody was eligible with every criterion, so these were dropped: the region requirement."
        in result.lines
    )
    assert "Decided under assignment policy version 2." in result.lines


def test_an_industry_filter_verdict(world, channel, english):
    t = world.a.tenant
    publish(t, require_industry=True)
    set_profile(world.a.rep, industries=["energy"])
    other = make_rep(t, "generalist")
    decision = dispatch(make_lead(t, channel, industry="manufacturing"))
    assert decision.chosen == other
    assert row(words(decision), world.a.rep).text == "Not in the lead's industry"


def test_paused_reps_are_passed_over(world, channel, english):
    set_profile(world.a.rep, zone="observation")
    other = make_rep(world.a.tenant, "steady")
    decision = dispatch(make_lead(world.a.tenant, channel))
    assert decision.chosen == other
    result = words(decision)
    assert row(result, world.a.rep).text == "Paused (observation zone)"
    assert f"{other.display_name} was the only eligible rep (1 paused)." in result.lines


def test_a_lead_taken_back_leaves_out_its_previous_owner(world, channel, english):
    t = world.a.tenant
    other = make_rep(t, "next")
    set_profile(world.a.rep)
    lead = make_lead(t, channel)
    first = dispatch(lead)
    previous = first.chosen
    with tenant_context(t):
        lead.refresh_from_db()
        again = lead_return_to_pool(
            tenant=t, acting_member=None, lead=lead, reason=PoolReason.NO_SECOND_TOUCH
        )
    assert again.kind == DecisionKind.RETURN and again.chosen != previous
    result = words(again)
    assert (
        "The lead was taken back from its previous owner and dispatched again without them."
        in result.lines
    )
    assert row(result, previous).text == "Left out: the lead was just taken back from them"
    assert previous.display_name not in text_of(result)
    assert other.pk in {previous.pk, again.chosen_id}


def test_manual_decisions_name_the_manager_and_the_reason(world, channel, english):
    t = world.a.tenant
    other = make_rep(t, "chosen-by-hand")
    lead = make_lead(t, channel)
    dispatch(lead)
    manager = world.a.manager.user
    with tenant_context(t):
        lead.refresh_from_db()
        target = other if lead.owner_id != other.pk else world.a.rep
        manual = lead_reassign(
            tenant=t, acting_member=world.a.manager, lead=lead, to=target, reason="客户指定"
        )
        pooled = lead_return_to_pool(
            tenant=t,
            acting_member=world.a.manager,
            lead=lead,
            reason=PoolReason.MANUAL,
            note="客户暂停采购",
        )
    result = words(manual)
    who = manager.get_full_name()
    assert result.headline == f"Reassigned to {target.display_name}"
    assert result.lines[0] == f"{who} assigned it by hand: 客户指定"
    result = words(pooled)
    assert result.headline == "Put back in the pool by hand"
    assert result.lines[0] == f"{who} put it back in the pool: 客户暂停采购"


def test_a_revisit_goes_to_the_first_owner(world, channel, english):
    t = world.a.tenant
    original = make_lead(t, channel, owner=world.a.rep, status="assigned")
    revisit = make_lead(t, channel, revisit_of=original)
    decision = dispatch(revisit)
    result = words(decision)
    assert result.headline == f"Assigned to {world.a.rep.display_name} (revisit)"
    assert "a revisit goes to the first lead's owner" in result.lines[0]


# -- a rep's own view ---------------------------------------------------------------------------


def test_why_not_gives_the_rep_their_verdict_and_the_winners_score_only(world, channel, english):
    t = world.a.tenant
    expert = make_rep(t, "expert", industries=["manufacturing"])
    decision = dispatch(make_lead(t, channel, industry="manufacturing"))
    mine = rep_words(decision, world.a.rep)
    text = text_of(mine)
    assert mine.headline == "It went to another rep" and not mine.mine
    assert (
        "Your score 60 was below the best band: it took scores from 72.25 (within 15% of the "
        "top); the chosen rep scored 85."
    ) in mine.lines
    assert "Your fit: 1 + response speed +0.1, deal-cycle preference +0.1 = 1.2" in text
    assert expert.display_name not in text and "expert" not in text
    theirs = rep_words(decision, expert)
    assert theirs.headline == "It went to you" and theirs.mine
    assert "You were chosen." in theirs.lines


def test_why_not_for_a_rep_who_was_not_a_candidate(world, channel, english):
    decision = dispatch(make_lead(world.a.tenant, channel))
    newcomer = make_rep(world.a.tenant, "newcomer")
    result = rep_words(decision, newcomer)
    assert result.lines == [
        "You were not a candidate: only active reps of the team are considered."
    ]


# -- every verdict, from a decision written by hand ---------------------------------------------


def _member(pk: int, name: str) -> Membership:
    user = get_user_model()(username=f"u{pk}", first_name=name)
    member = Membership(pk=pk, user=user, role=Role.REP)
    return member


WINNER = {
    "m": 1,
    "n": "张三",
    "v": "ok",
    "fit": {"industry": 0.5, "response": 0.1, "cycle": 0.1},
    "score": 100,
    "exp": 3.0,
    "rec": 2,
    "short": 1.0,
    "hot": False,
    "band": True,
}


def _decision(entry: dict, *, hot_zone=False, seed=7) -> AssignmentDecision:
    decision = AssignmentDecision(
        kind=DecisionKind.AUTO,
        outcome=DecisionOutcome.ASSIGNED,
        chosen=_member(1, "张三"),
        seed=seed,
        lead_score=60,
        score_breakdown=[{"rule": "r", "label": "A 类来源", "points": 10}],
        candidates=[WINNER, {"m": 2, "n": "李四", **entry}],
        hot_zone=hot_zone,
    )
    return decision


def _seed_picking_first() -> int:
    return next(s for s in range(100) if random.Random(s).choice([1, 2]) == 1)


VERDICTS = [
    (
        {"v": "unavailable"},
        "Unavailable (leave or away)",
        "You were marked unavailable (leave or away) when it was dispatched.",
    ),
    (
        {"v": "paused"},
        "Paused (observation zone)",
        "You were paused from dispatch (observation zone) when it was dispatched.",
    ),
    (
        {"v": "at_capacity", "open": 8, "cap": 8},
        "At capacity 8/8",
        "You were at capacity: 8 open unverified leads of 8.",
    ),
    (
        {"v": "region"},
        "Not in the lead's region",
        "The lead's region is not one of yours, and the policy required it.",
    ),
    (
        {"v": "industry"},
        "Not in the lead's industry",
        "The lead's industry is not one of yours, and the policy required it.",
    ),
    (
        {"v": "excluded"},
        "Left out: the lead was just taken back from them",
        "It had just been taken back from you, so you were left out.",
    ),
    (
        {"v": "ok", "fit": {}, "score": 60, "exp": 1, "rec": 1, "short": 0, "band": False},
        "Score 60, below the best band (from 85)",
        "Your score 60 was below the best band: it took scores from 85 (within 15% of the "
        "top); the chosen rep scored 100.",
    ),
    (
        {"v": "ok", "fit": {"region": 0.3}, "score": 95, "exp": 1.5, "rec": 1, "short": 0.5}
        | {"band": True},
        "In the best band but with a smaller shortfall (0.5 against 1)",
        "You were in the best band (score 95; the chosen rep scored 100), but another rep was "
        "further behind their fair share: you had 1 received against 1.5 expected over the "
        "last 30 days (shortfall 0.5).",
    ),
]


@pytest.mark.parametrize(
    ("entry", "label", "own"), VERDICTS, ids=[v[0]["v"] + str(i) for i, v in enumerate(VERDICTS)]
)
def test_each_verdict_in_words(entry, label, own, english):
    decision = _decision(entry)
    result = explain(decision)
    other = next(c for c in result.candidates if c.membership_id == 2)
    assert other.text == label
    assert result.candidates[0].chosen and result.candidates[0].text == "Chosen"
    mine = why_not(decision, _member(2, "李四"))
    assert own in mine.lines
    assert "张三" not in text_of(mine)


def test_a_tie_lost_to_the_draw_in_words(english):
    seed = _seed_picking_first()
    entry = {"v": "ok", "fit": {}, "score": 95, "exp": 3, "rec": 2, "short": 1.0, "band": True}
    decision = _decision(entry, seed=seed)
    result = explain(decision)
    assert (
        result.others[0].text == "In the best band with the same shortfall: not picked by the draw"
    )
    assert any(f"a draw with seed {seed} picked 张三" in line for line in result.lines)
    mine = why_not(decision, _member(2, "李四"))
    assert any("a seeded draw picked them" in line for line in mine.lines)


def test_a_tie_the_draw_did_not_decide_is_not_called_one(english):
    # Rounded shortfalls look equal, but the seeded draw would have picked the other rep:
    # the real shortfalls differed, so the words say "the largest", not "a draw".
    seed = next(s for s in range(100) if random.Random(s).choice([1, 2]) == 2)
    entry = {"v": "ok", "fit": {}, "score": 95, "exp": 3, "rec": 2, "short": 1.0, "band": True}
    result = explain(_decision(entry, seed=seed))
    assert not any("draw" in line for line in result.lines)
    assert any(line.endswith("the largest in the band.") for line in result.lines)


def test_a_rep_outside_the_hot_zone_in_words(english):
    winner_hot = {**WINNER, "hot": True}
    entry = {"v": "ok", "fit": {}, "score": 120, "exp": 1, "rec": 0, "short": 1, "hot": False}
    decision = _decision(entry | {"band": False}, hot_zone=True)
    decision.candidates = [winner_hot, {"m": 2, "n": "李四", **entry, "band": False}]
    result = explain(decision)
    assert result.others[0].text == "Score 120, but reps without a lead for 7 days went first"
    mine = why_not(decision, _member(2, "李四"))
    assert (
        "The lead scores at least 70, so reps without a new lead for 7 days went first; you "
        "had received one more recently."
    ) in mine.lines


def test_numbers_are_short():
    assert [number(v) for v in (12, 2.5, 1.2345, -0.333, None, 72.25)] == [
        "12",
        "2.5",
        "1.23",
        "-0.33",
        "—",
        "72.25",
    ]


def test_it_speaks_chinese_by_default(world, channel):
    decision = dispatch(make_lead(world.a.tenant, channel))
    result = words(decision)
    assert result.headline  # worded in the active language (Chinese once translated)
    assert world.a.rep.display_name in result.headline
