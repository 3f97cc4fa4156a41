"""The leads app's water levels (leads/reports/levels.py): the response-time median and the
process-data completeness of a day, per rep and for the team, computed from hand-built
leads and follow-ups and recomputed here from the times and fields written; the drill-down
rows of their metrics add up to the same figures; the tenant's response target."""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta

import pytest
from django.db import connection

from crm import levels, metrics
from crm.metrics import REP
from crm.tenancy import tenant_context
from customers.models import Interaction, InteractionKind, PresetKind
from customers.services import presets
from leads.models import SalesModel, SlaPolicy
from leads.reports.levels import (
    FOLLOW_UPS_METRIC,
    RESPONSE_METRIC,
    STRUCTURED_METRIC,
    response_target,
)
from tests.leads.factories import make_assigned_lead, make_channel, make_rep

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 2)


def at(tenant, day: date, hour: int, minute: int = 0) -> datetime:
    """A moment of the tenant's local day."""
    return datetime.combine(day, time(hour, minute), tzinfo=tenant.tzinfo)


def db_now() -> datetime:
    """PostgreSQL's now(): the test's transaction began then (the untouched leads' wait)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def reading_of(key, tenant, day=DAY):
    with tenant_context(tenant):
        return levels.get_level(key).compute(tenant, day)


# -- response time ------------------------------------------------------------------------------


def build_responses(world):
    """Leads assigned on DAY (and around it, and in the other tenant), with their waits in
    minutes as written here: {owner id: [minutes]} of the ones DAY counts."""
    t = world.a.tenant
    rep, rep2 = world.a.rep, make_rep(t, "alpha-rep2")
    channel = make_channel(t)
    counted: dict[int, list[float]] = {rep.pk: [], rep2.pk: []}

    def lead(owner, assigned, minutes=None):
        touched = assigned + timedelta(minutes=minutes) if minutes is not None else None
        return make_assigned_lead(t, owner, assigned, channel=channel, first_touch_at=touched)

    for hour, minutes in ((9, 10), (9, 30), (14, 50), (23, 80)):  # the last touched after midnight
        lead(rep, at(t, DAY, hour), minutes)
        counted[rep.pk].append(float(minutes))
    for hour, minutes in ((10, 200), (11, 240)):
        lead(rep2, at(t, DAY, hour), minutes)
        counted[rep2.pk].append(float(minutes))
    untouched = lead(rep2, at(t, DAY, 16))
    counted[rep2.pk].append((db_now() - untouched.assigned_at).total_seconds() / 60)

    # Not counted: assigned the evening before and the morning after; touched before its
    # latest assignment (a verified lead handed on); in the pool; another tenant's.
    lead(rep, at(t, DAY, 0) - timedelta(minutes=1), 5)
    lead(rep, at(t, DAY + timedelta(days=1), 0, 1), 5)
    handed_on = lead(rep2, at(t, DAY, 12), 1)
    with tenant_context(t):
        type(handed_on).objects.filter(pk=handed_on.pk).update(
            first_touch_at=at(t, DAY - timedelta(days=3), 9)
        )
    make_assigned_lead(t, None, at(t, DAY, 9), channel=channel)  # in the pool
    b = world.b
    make_assigned_lead(
        b.tenant, b.rep, at(b.tenant, DAY, 9), first_touch_at=at(b.tenant, DAY, 9, 1)
    )
    return rep, rep2, counted


def test_response_time_is_the_median_wait_from_assignment_to_first_touch(world):
    rep, rep2, counted = build_responses(world)
    found = reading_of("leads.response", world.a.tenant)

    everyone = sorted(counted[rep.pk] + counted[rep2.pk])
    assert found[rep.pk].value == pytest.approx(statistics.median(counted[rep.pk]))  # 40
    assert found[rep.pk].sample == 4
    # The untouched lead waits longest: it pulls the median up to the second-longest.
    assert found[rep2.pk].value == pytest.approx(statistics.median(counted[rep2.pk]))
    assert found[rep2.pk].value == pytest.approx(240)
    assert found[None].value == pytest.approx(statistics.median(everyone))  # 80
    assert found[None].sample == 7
    assert set(found) == {rep.pk, rep2.pk, None}


def test_the_response_metric_and_its_rows_give_the_same_figures(world):
    rep, _rep2, counted = build_responses(world)
    t = world.a.tenant
    metric = metrics.get_metric(RESPONSE_METRIC)
    with tenant_context(t):
        team = metrics.value(metric, tenant=t, start=DAY, end=DAY)
        table = metrics.drill_down(metric, tenant=t, start=DAY, end=DAY)
        mine = metrics.drill_down(metric, tenant=t, start=DAY, end=DAY, filters={REP: rep.pk})
    assert len(table) == 7
    assert metrics.recount(metric, table) == pytest.approx(team)
    assert metrics.recount(metric, mine) == pytest.approx(statistics.median(counted[rep.pk]))


def test_the_response_target_is_the_tenants_sales_model(world):
    t = world.a.tenant
    level = levels.get_level("leads.response")
    with tenant_context(t):
        assert response_target(t) == 120.0  # no SLA policy yet: B2B
        SlaPolicy.objects.create(tenant=t, sales_model=SalesModel.B2C)
        assert level.target_for(t) == 15.0
        assert level.meets(14.0, 15.0) and not level.meets(16.0, 15.0)
    with tenant_context(world.b.tenant):
        assert level.target_for(world.b.tenant) == 120.0


def test_the_sales_model_is_edited_in_the_sla_policy_admin(world, login):
    t = world.a.tenant
    with tenant_context(t):
        policy = SlaPolicy.objects.create(tenant=t)
    client = login(world.a.admin)
    response = client.get(f"/admin/leads/slapolicy/{policy.pk}/change/")
    assert response.status_code == 200
    assert b'name="sales_model"' in response.content


# -- process-data completeness ----------------------------------------------------------------


def build_follow_ups(world):
    """Follow-ups on DAY's leads: {owner id: [structured?]} of the ones DAY counts."""
    t = world.a.tenant
    rep, rep2 = world.a.rep, make_rep(t, "alpha-rep2")
    channel = make_channel(t)
    lead = make_assigned_lead(t, rep, at(t, DAY - timedelta(days=1), 9), channel=channel)
    lead2 = make_assigned_lead(t, rep2, at(t, DAY - timedelta(days=1), 9), channel=channel)
    counted = {rep.pk: [], rep2.pk: []}
    with tenant_context(t):
        action = presets(PresetKind.ACTION).first()

        def log(by, on, when, tags, roles, kind=InteractionKind.FOLLOW_UP, **fields):
            return Interaction.objects.create(
                tenant=t,
                kind=kind,
                lead=on,
                customer=fields.get("customer"),
                by=by,
                at=when,
                channel="phone",
                talk_tags=tags,
                roles=roles,
                next_action=action,
                next_action_due=DAY + timedelta(days=3),
            )

        for hour, tags, roles in (
            (9, ["价格敏感"], ["technical"]),
            (10, ["价格敏感"], []),
            (11, [], ["finance"]),
            (23, ["已达成共识", "技术疑虑"], ["decision_maker", "finance"]),
        ):
            log(rep, lead, at(t, DAY, hour), tags, roles)
            counted[rep.pk].append(bool(tags) and bool(roles))
        log(rep2, lead2, at(t, DAY, 15), ["价格敏感"], ["user"])
        counted[rep2.pk].append(True)

        # Not counted: the verification call, the day before and after, a customer's
        # follow-up without a lead.
        log(rep, lead, at(t, DAY, 8), [], [], kind=InteractionKind.VERIFICATION)
        log(rep, lead, at(t, DAY, 0) - timedelta(minutes=1), [], [])
        log(rep, lead, at(t, DAY + timedelta(days=1), 0), [], [])
        from tests.opportunities.helpers import make_customer

        customer = make_customer(world.a, name="客户跟进")
        log(rep, None, at(t, DAY, 12), [], [], customer=customer)
    return rep, rep2, counted


def test_process_data_is_the_share_of_the_days_follow_ups_with_tags_and_roles(world):
    rep, rep2, counted = build_follow_ups(world)
    found = reading_of("leads.process_data", world.a.tenant)

    def share(flags):
        return sum(flags) / len(flags)

    assert found[rep.pk].value == pytest.approx(share(counted[rep.pk]))  # 2 of 4
    assert found[rep.pk].sample == 4
    assert found[rep2.pk].value == pytest.approx(1.0)
    assert found[None].value == pytest.approx(share(counted[rep.pk] + counted[rep2.pk]))  # 3/5
    assert found[None].sample == 5


def test_process_data_rows_are_the_days_follow_ups(world):
    rep, _rep2, counted = build_follow_ups(world)
    t = world.a.tenant
    logged = metrics.get_metric(FOLLOW_UPS_METRIC)
    structured = metrics.get_metric(STRUCTURED_METRIC)
    with tenant_context(t):
        rows = metrics.drill_down(logged, tenant=t, start=DAY, end=DAY, filters={REP: rep.pk})
        good = metrics.drill_down(structured, tenant=t, start=DAY, end=DAY)
    assert len(rows) == len(counted[rep.pk])
    assert len(good) == 3
    columns = metrics.column_names(logged)
    assert "lead__public_id" in columns  # each row opens its lead


def test_a_day_without_rows_has_no_value(world):
    found = reading_of("leads.process_data", world.a.tenant)
    assert found == {None: levels.Reading(None, 0)}
    found = reading_of("leads.response", world.a.tenant)
    assert found[None].value is None and found[None].sample == 0
