"""The risk list's entries (F34), settled by the nightly recompute: a customer whose day's
score is below the tenant's line and who has had no interaction for its quiet days enters
once per stay, with the playbook step of its weakest dimension and its owner; it leaves on
the first day it no longer qualifies; coming back opens a new stay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.tenancy import tenant_context
from health import compute
from health.models import DEFAULT_PLAYBOOK, PlaybookStep, RiskEntry
from tests.health.helpers import DAY, customer, interaction, moment

pytestmark = pytest.mark.django_db


def run(side, day=DAY):
    with tenant_context(side.tenant):
        return compute.recompute(side.tenant, day=day)


def entries(side, cust):
    with tenant_context(side.tenant):
        return list(RiskEntry.objects.filter(customer=cust).order_by("entered_on", "id"))


def quiet(side, name="恒力液压", days=20.0, owner=None):
    """A customer last contacted `days` days before DAY: at 20 days, recency 65 and one
    interaction in 90 days (40): (25·65 + 20·40) / 45 = 54 < 60, and 20 ≥ 7 quiet days."""
    cust = customer(side, name, owner=owner)
    interaction(side, cust, moment(side, days))
    return cust


def test_a_quiet_low_customer_enters_once_and_stays(world):
    a = world.a
    cust = quiet(a)
    result = run(a)
    assert (result.entered, result.left) == (1, 0)
    [entry] = entries(a, cust)
    assert entry.entered_on == DAY and entry.left_on is None
    assert entry.score == 54 and entry.weakest == "frequency"
    assert entry.action == DEFAULT_PLAYBOOK  # no playbook step: the product's default
    # The next days it still qualifies: no second entry while on the list.
    for n in (1, 2):
        result = run(a, DAY + timedelta(days=n))
        assert (result.entered, result.left) == (0, 0)
    # The same day again (idempotent): nothing new either.
    assert (run(a).entered, run(a).left) == (0, 0)
    assert len(entries(a, cust)) == 1


def test_leaving_and_coming_back_opens_a_new_stay(world):
    a = world.a
    cust = quiet(a)
    run(a)
    # A call the day after: recency 0 → 100 (25·100 + 20·40)/45 = 73, off the list.
    interaction(a, cust, moment(a, 0.5, DAY + timedelta(days=2)))
    result = run(a, DAY + timedelta(days=2))
    assert (result.entered, result.left) == (0, 1)
    [entry] = entries(a, cust)
    assert entry.left_on == DAY + timedelta(days=2)
    # Quiet again long enough: 30 days later it is back, as a new stay with a new task.
    back = DAY + timedelta(days=32)
    result = run(a, back)
    assert result.entered == 1
    first, second = entries(a, cust)
    assert first.pk == entry.pk and first.left_on == DAY + timedelta(days=2)
    assert second.entered_on == back and second.left_on is None and second.done_at is None


def test_the_playbook_step_follows_the_weakest_dimension(world):
    a = world.a
    low_frequency = quiet(a, "弱频次")  # weakest: frequency (40 against recency 65)
    # 95 days quiet: recency 0, no interaction in 90 days (frequency 10): weakest recency.
    low_recency = quiet(a, "久未联系", days=95)
    with tenant_context(a.tenant):
        PlaybookStep.objects.create(tenant=a.tenant, dimension="frequency", action="每周拜访一次")
        PlaybookStep.objects.create(tenant=a.tenant, dimension="", action="总经理回访")
        # An inactive step for recency is not used.
        PlaybookStep.objects.create(
            tenant=a.tenant, dimension="recency", action="旧做法", is_active=False
        )
    run(a)
    [freq] = entries(a, low_frequency)
    [rec] = entries(a, low_recency)
    assert (freq.weakest, freq.action) == ("frequency", "每周拜访一次")
    assert (rec.weakest, rec.action) == ("recency", "总经理回访")  # no step: the default one


def test_the_owner_is_copied_and_follows_a_reassignment(world):
    a = world.a
    cust = quiet(a, owner=a.rep)
    run(a)
    [entry] = entries(a, cust)
    assert entry.owner_id == a.rep.pk
    with tenant_context(a.tenant):
        cust.owner = a.manager
        cust.save(update_fields=["owner"])
    run(a, DAY + timedelta(days=1))
    [entry] = entries(a, cust)
    assert entry.owner_id == a.manager.pk  # the task goes to whoever owns the customer now


def test_a_customer_without_a_score_never_enters(world):
    a = world.a
    nothing = customer(a, "无数据")  # no data at all: no score
    fine = quiet(a, "常联系", days=2)  # recently contacted: not quiet
    result = run(a)
    assert result.entered == 0
    assert entries(a, nothing) == [] and entries(a, fine) == []


def test_the_tenant_rule_decides(world):
    a = world.a
    cust = quiet(a)
    from health.models import HealthSettings

    with tenant_context(a.tenant):
        settings = HealthSettings.for_tenant(a.tenant)
        settings.risk_quiet_days = 30  # 20 days is not quiet enough now
        settings.save()
    run(a)
    assert entries(a, cust) == []
    with tenant_context(a.tenant):
        HealthSettings.objects.filter(pk=settings.pk).update(risk_quiet_days=7, risk_score_below=50)
    run(a)
    assert entries(a, cust) == []  # 54 is not below 50


def test_tenants_settle_apart(world):
    a, b = world.a, world.b
    cust_a = quiet(a)
    cust_b = quiet(b)
    run(a)
    assert len(entries(a, cust_a)) == 1
    assert entries(b, cust_b) == []
    run(b)
    with tenant_context(a.tenant):
        assert RiskEntry.objects.count() == 1
