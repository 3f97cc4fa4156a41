"""The opportunities app's sales process figures (opportunities/process.py): key-person
coverage over the opportunities in play, and the objection closure rate, built from
hand-made rows of tenant a (Asia/Shanghai) over 2026-03-02 … 2026-03-08 and recounted here
in Python from the rows; per rep and for the team; each rate's numerator rows among its
denominator's."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from crm import metrics
from crm.metrics import REP
from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Contact
from opportunities.models import (
    ChainRole,
    ContactStatus,
    Influence,
    Opportunity,
    OpportunityContact,
    OpportunityStatus,
    TechnicalQuestion,
)
from tests.factories import MembershipFactory
from tests.opportunities.test_forecast import opportunity

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 3, 2), date(2026, 3, 8)
SINCE = datetime(2026, 3, 2, tzinfo=SHANGHAI)
UNTIL = datetime(2026, 3, 9, tzinfo=SHANGHAI)


def at(day: int, hour: int = 12, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def member(side, opp, role_name, status, influence=Influence.MEDIUM):
    with tenant_context(side.tenant):
        contact = Contact.objects.create(tenant=side.tenant, customer=opp.customer, name=role_name)
        return OpportunityContact.objects.create(
            tenant=side.tenant,
            opportunity=opp,
            contact=contact,
            role=ChainRole.objects.get(name=role_name),
            influence=influence,
            contact_status=status,
        )


def question(side, opp, opened, closed=None):
    with tenant_context(side.tenant):
        return TechnicalQuestion.objects.create(
            tenant=side.tenant,
            opportunity=opp,
            text="能否与现有 PACS 系统对接?",
            opened_by=opp.owner,
            opened_at=opened,
            closed_at=closed,
        )


def build(world):
    a = world.a
    rep1 = a.rep
    rep2 = MembershipFactory(tenant=a.tenant, role=Role.REP, user__username="alpha-rep2")
    # rep1: the CIO (a decision maker) reached → covered.
    o1 = opportunity(a, rep1, created_at=at(20, month=2))
    member(a, o1, "CIO", ContactStatus.REACHED)
    # rep1: the CIO reached, but a high-influence technical evaluator not yet → not.
    o2 = opportunity(a, rep1, created_at=at(3))
    member(a, o2, "CIO", ContactStatus.REACHED)
    member(a, o2, "技术评估", ContactStatus.NOT_YET, influence=Influence.HIGH)
    # rep1: no chain at all → not covered.
    o3 = opportunity(a, rep1, created_at=at(4))
    # rep1: won in the range, its 总经理 engaged → in play and covered.
    o4 = opportunity(a, rep1, created_at=at(1, month=2), status=OpportunityStatus.WON, won_at=at(5))
    member(a, o4, "总经理", ContactStatus.ENGAGED)
    # Not in play: lost before the range, opened after it.
    lost = opportunity(
        a, rep1, created_at=at(1, month=2), status=OpportunityStatus.LOST, lost_at=at(1, 23, 59)
    )
    member(a, lost, "CIO", ContactStatus.REACHED)
    opportunity(a, rep1, created_at=at(9, 0, 0))
    # rep2: only finance (medium influence) reached: no key person → not covered.
    o7 = opportunity(a, rep2, created_at=at(1))
    member(a, o7, "财务", ContactStatus.REACHED)
    # rep2: a purchasing director of high influence reached → covered.
    o8 = opportunity(a, rep2, created_at=at(2))
    member(a, o8, "采购总监", ContactStatus.ENGAGED, influence=Influence.HIGH)

    # Objections raised in the range: rep1 3 (2 answered, one after the range), rep2 1.
    question(a, o1, at(2, 0, 0), closed=at(4))
    question(a, o2, at(5))
    question(a, o3, at(8, 23, 59), closed=at(10))
    question(a, o1, at(1, 23, 59), closed=at(2))  # the day before: not counted
    question(a, o7, at(6))
    # Another tenant: never counted.
    other = opportunity(world.b, world.b.rep, created_at=at(3))
    member(world.b, other, "CIO", ContactStatus.REACHED)
    question(world.b, other, at(3), closed=at(4))
    return rep2


KEY = frozenset({"decision_maker"})


def recount(tenant, rep=None) -> dict:
    """The figures from the rows, by the definitions in docs/process.md."""
    with tenant_context(tenant):
        in_play = [
            o
            for o in Opportunity.objects.select_related("owner")
            if o.created_at < UNTIL
            and (
                o.status == "open"
                or (o.won_at and o.won_at >= SINCE)
                or (o.lost_at and o.lost_at >= SINCE)
            )
            and (rep is None or o.owner_id == rep)
        ]
        reached = 0
        for o in in_play:
            keys = [
                m
                for m in o.chain.select_related("role")
                if m.role.decision_role in KEY or m.influence == "high"
            ]
            reached += bool(keys) and all(m.contact_status in ("reached", "engaged") for m in keys)
        raised = [
            q
            for q in TechnicalQuestion.objects.select_related("opportunity")
            if SINCE <= q.opened_at < UNTIL and (rep is None or q.opportunity.owner_id == rep)
        ]
        closed = sum(q.closed_at is not None for q in raised)
    return {
        "opportunities.process_in_play": len(in_play),
        "opportunities.process_key_people_reached": reached,
        "opportunities.process_key_people_missing": len(in_play) - reached,
        "opportunities.process_objections_raised": len(raised),
        "opportunities.process_objections_closed": closed,
        "opportunities.process_objections_open": len(raised) - closed,
    }


BY_HAND = {
    None: (6, 3, 3, 4, 2, 2),
    "rep1": (4, 2, 2, 3, 2, 1),
    "rep2": (2, 1, 1, 1, 0, 1),
}
KEYS = (
    "opportunities.process_in_play",
    "opportunities.process_key_people_reached",
    "opportunities.process_key_people_missing",
    "opportunities.process_objections_raised",
    "opportunities.process_objections_closed",
    "opportunities.process_objections_open",
)


def test_each_figure_matches_the_hand_count_and_the_recount_per_rep_and_team(world):
    rep2 = build(world)
    t = world.a.tenant
    found = [metrics.get_metric(k) for k in KEYS]
    assert all(m is not None and m.group == "process" for m in found)
    with tenant_context(t):
        team = metrics.values_of(found, tenant=t, start=START, end=END)
        by_rep = metrics.values_by(found, REP, tenant=t, start=START, end=END)
        for metric in found:
            table = metrics.drill_down(metric, tenant=t, start=START, end=END)
            assert len(table) == team[metric.key], metric.key
    assert team == dict(zip(KEYS, BY_HAND[None], strict=True)) == recount(t)
    for name, pk in (("rep1", world.a.rep.pk), ("rep2", rep2.pk)):
        assert by_rep[pk] == dict(zip(KEYS, BY_HAND[name], strict=True)) == recount(t, pk)


def test_each_rates_numerator_rows_are_among_its_denominators_and_act_on_is_the_rest(world):
    build(world)
    t = world.a.tenant
    for key in (
        "opportunities.process_key_person_coverage",
        "opportunities.process_objection_closure",
    ):
        rate = metrics.get_rate(key)
        assert rate.group == "process" and str(rate.advice) and rate.target
        with tenant_context(t):
            rows = {
                name: set(
                    metrics.rows_of(
                        metrics.get_metric(k), tenant=t, start=START, end=END
                    ).values_list("pk", flat=True)
                )
                for name, k in (
                    ("num", rate.numerator),
                    ("den", rate.denominator),
                    ("act", rate.act_on),
                )
            }
        assert rows["num"] and rows["num"] <= rows["den"], key
        assert rows["act"] == rows["den"] - rows["num"], key
