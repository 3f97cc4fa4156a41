"""The board's "Stalled opportunities" section: the owner's quiet opportunities past their
stage's days to stall, with what is missing to advance, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.board import sections_for
from crm.tenancy import tenant_context
from opportunities.board import stalled_items
from opportunities.models import Opportunity
from tests.opportunities.helpers import complete, make_customer, make_opportunity

pytestmark = pytest.mark.django_db


def _quiet(side, opportunity, days):
    with tenant_context(side.tenant):
        Opportunity.objects.filter(pk=opportunity.pk).update(
            last_activity_at=timezone.now() - timedelta(days=days)
        )


def test_only_the_owners_quiet_ones_past_their_stage_limit(world):
    quiet = make_opportunity(world.a, customer_name="静默公司")
    fresh = make_opportunity(world.a, customer_name="活跃公司")
    others = make_opportunity(
        world.a,
        customer=make_customer(world.a, "经理的客户", owner=world.a.manager),
        owner=world.a.manager,
    )
    _quiet(world.a, quiet, 15)  # 初步接触 allows 14 days
    _quiet(world.a, fresh, 13)
    _quiet(world.a, others, 40)
    with tenant_context(world.a.tenant):
        items = stalled_items(world.a.rep, timezone.localdate())
    assert [i.opportunity.pk for i in items] == [quiet.pk]
    item = items[0]
    assert item.quiet_days == 15
    assert item.next_stage.code == "needs"
    assert {c.requirement.kind for c in item.missing} == {"follow_ups", "decision_chain"}


def test_a_follow_up_wakes_it_up(world):
    from tests.opportunities.helpers import log_follow_up

    quiet = make_opportunity(world.a)
    _quiet(world.a, quiet, 30)
    log_follow_up(world.a, quiet)
    with tenant_context(world.a.tenant):
        assert stalled_items(world.a.rep, timezone.localdate()) == []


def test_the_section_shows_on_the_board_with_constant_queries(world, django_assert_max_num_queries):
    for i in range(3):
        o = make_opportunity(world.a, customer_name=f"公司{i}")
        complete(world.a, o, "contact")
        _quiet(world.a, o, 20)
    # Every section of the board (the rescue list and the automation rules' tasks added one
    # query each), whatever the rows.
    with tenant_context(world.a.tenant), django_assert_max_num_queries(11):
        shown = [
            s
            for s in sections_for(world.a.rep, timezone.localdate())
            if s.section.key == "stalled_opportunities"
        ]
    assert shown[0].count == 3
    for i in range(3, 12):
        o = make_opportunity(world.a, customer_name=f"公司{i}")
        _quiet(world.a, o, 20)
    # Every section of the board (the rescue list and the automation rules' tasks added one
    # query each), whatever the rows.
    with tenant_context(world.a.tenant), django_assert_max_num_queries(11):
        shown = [
            s
            for s in sections_for(world.a.rep, timezone.localdate())
            if s.section.key == "stalled_opportunities"
        ]
    assert shown[0].count == 10


def test_the_board_page_lists_them(world, login):
    quiet = make_opportunity(world.a, customer_name="静默公司")
    _quiet(world.a, quiet, 20)
    response = login(world.a.rep).get("/board/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="stalled-opportunity"' in body
    assert quiet.name in body
