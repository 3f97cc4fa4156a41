"""The decision-chain water level (opportunities/levels.py): the share of the opportunities
open at the end of a day whose chain names every required role with a known attitude, per
rep and for the team, from hand-built chains recounted here; the required roles are the
tenant's (ChainRole.required, edited in the admin)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from crm import levels, metrics
from crm.tenancy import tenant_context
from opportunities.levels import COMPLETE_METRIC, OPEN_METRIC
from opportunities.models import Attitude, ChainRole, Opportunity, OpportunityStatus
from tests.leads.factories import make_rep
from tests.opportunities.helpers import make_customer, make_opportunity, map_member

pytestmark = pytest.mark.django_db

REQUIRED = ("CIO", "采购总监", "技术评估")  # the defaults (opportunities.setup)
S, N, OPP, U = Attitude.SUPPORT, Attitude.NEUTRAL, Attitude.OPPOSE, Attitude.UNKNOWN


def day_of(tenant):
    """The day the levels are read for: yesterday, the nightly job's day."""
    return timezone.localdate(timezone=tenant.tzinfo) - timedelta(days=1)


def end_of(tenant, day) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tenant.tzinfo)


def opportunity(side, owner, name, chain: dict):
    found = make_opportunity(
        side, owner=owner, customer=make_customer(side, name=name, owner=owner)
    )
    for role, attitude in chain.items():
        map_member(side, found, role, attitude=attitude)
    return found


def build(world):
    """Chains of the side a's open opportunities: {owner id: [complete?]} as written."""
    side = world.a
    rep, rep2 = side.rep, make_rep(side.tenant, "alpha-rep2")
    counted = {rep.pk: [], rep2.pk: []}
    chains = [
        (rep, {"CIO": S, "采购总监": N, "技术评估": OPP}, True),
        (rep, {"CIO": S, "采购总监": S, "技术评估": U}, False),  # one attitude unknown
        (rep, {"CIO": S, "技术评估": S}, False),  # the purchasing director missing
        (rep, {"总经理": S, "CIO": N, "采购总监": OPP, "技术评估": S, "财务": U}, True),
        (rep2, {"CIO": S, "采购总监": S, "技术评估": S}, True),
        (rep2, {}, False),
    ]
    made = []
    for n, (owner, chain, complete) in enumerate(chains):
        made.append(opportunity(side, owner, f"客户{n}", chain))
        counted[owner.pk].append(complete)
    t = side.tenant
    end = end_of(t, day_of(t))
    with tenant_context(t):
        # Opened the morning of the day.
        Opportunity.objects.update(created_at=end - timedelta(hours=15))
        # Open at the end of the day: lost only after it (counted, incomplete) …
        lost_later = opportunity(side, rep, "客户后丢", {"CIO": S})
        Opportunity.objects.filter(pk=lost_later.pk).update(
            created_at=end - timedelta(hours=15),
            status=OpportunityStatus.LOST,
            lost_at=end + timedelta(minutes=5),
        )
        counted[rep.pk].append(False)
        # … not: won in the evening, opened after the day.
        won = opportunity(side, rep, "客户已签", {"CIO": S, "采购总监": S, "技术评估": S})
        Opportunity.objects.filter(pk=won.pk).update(
            created_at=end - timedelta(hours=15),
            status=OpportunityStatus.WON,
            won_at=end - timedelta(hours=1),
        )
        later = opportunity(side, rep2, "客户明天", {"CIO": S, "采购总监": S, "技术评估": S})
        Opportunity.objects.filter(pk=later.pk).update(created_at=end + timedelta(minutes=1))
    # Another tenant's complete chain.
    opportunity(world.b, world.b.rep, "别家客户", {"CIO": S, "采购总监": S, "技术评估": S})
    return rep, rep2, counted


def reading(tenant, day=None):
    with tenant_context(tenant):
        level = levels.get_level("opportunities.decision_chain")
        return level.compute(tenant, day or day_of(tenant))


def test_chain_completeness_is_the_share_of_open_chains_with_every_required_role(world):
    rep, rep2, counted = build(world)
    found = reading(world.a.tenant)

    def share(flags):
        return sum(flags) / len(flags)

    assert found[rep.pk].value == pytest.approx(share(counted[rep.pk]))  # 2 of 5
    assert found[rep.pk].sample == 5
    assert found[rep2.pk].value == pytest.approx(share(counted[rep2.pk]))  # 1 of 2
    assert found[None].value == pytest.approx(share(counted[rep.pk] + counted[rep2.pk]))
    assert found[None].sample == 7
    # Today (its end still to come): the opportunities open now, the lost one not.
    now = reading(world.a.tenant, timezone.localdate(timezone=world.a.tenant.tzinfo))
    assert now[rep.pk].sample == 4
    assert now[rep2.pk].sample == 3  # the one opened after yesterday too


def test_its_rows_are_the_open_opportunities_with_their_chain_state(world):
    rep, _rep2, counted = build(world)
    t = world.a.tenant
    day = day_of(t)
    opened, complete = metrics.get_metric(OPEN_METRIC), metrics.get_metric(COMPLETE_METRIC)
    with tenant_context(t):
        rows = metrics.drill_down(opened, tenant=t, start=day, end=day)
        good = metrics.drill_down(complete, tenant=t, start=day, end=day)
        mine = metrics.value(complete, tenant=t, start=day, end=day, filters={"rep": rep.pk})
    assert len(rows) == 7
    flags = [row[metrics.column_names(opened).index("chain_complete")] for row in rows]
    assert sum(flags) == len(good) == 3
    assert mine == sum(counted[rep.pk])


def test_the_required_roles_are_the_tenants(world):
    rep, _rep2, _counted = build(world)
    t = world.a.tenant
    with tenant_context(t):
        # The purchasing director no longer required: the chain missing it is complete.
        ChainRole.objects.filter(name="采购总监").update(required=False)
    assert reading(t)[rep.pk].value == pytest.approx(3 / 5)
    with tenant_context(t):
        ChainRole.objects.filter(name="技术评估").update(is_active=False)  # inactive: not asked
    assert reading(t)[rep.pk].value == pytest.approx(1.0)  # every one names the CIO
    with tenant_context(t):
        ChainRole.objects.update(required=False)
    assert reading(t) == {None: levels.Reading(None, 0)}  # nothing required: no level


def test_the_defaults_require_three_roles_and_the_admin_edits_them(world, login):
    opportunity(world.a, world.a.rep, "客户", {})
    with tenant_context(world.a.tenant):
        assert set(ChainRole.objects.filter(required=True).values_list("name", flat=True)) == set(
            REQUIRED
        )
    response = login(world.a.admin).get("/admin/opportunities/chainrole/")
    assert response.status_code == 200
    assert b'name="form-0-required"' in response.content  # ticked in the list
