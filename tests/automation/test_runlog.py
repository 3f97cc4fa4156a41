"""The run log's two tables read as one: a drained event's plain false conditions are one
`Miss` row for all its rules (not a `Run` per rule), shown among each rule's runs with the
values the condition read and its count; anything else is a `Run`."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automation.models import Miss, Run
from automation.runlog import history
from crm.tenancy import tenant_context
from tests.automation.helpers import customer, drain, enquiry, rule, runs

pytestmark = pytest.mark.django_db


def test_the_false_conditions_of_an_event_are_one_row(world):
    a = world.a
    cust = customer(a)
    fires = rule(a, name="DN50", condition='product_model == "DN50"', to_role="manager")
    other = rule(a, name="DN80", condition='product_model == "DN80"', to_role="manager")
    counted = rule(a, name="三次", count_at_least=3, count_same="product_model", to_role="manager")
    ticket = enquiry(a, 1)
    drain(a)
    with tenant_context(a.tenant):
        [miss] = Miss.objects.all()
        assert sorted(zip(miss.rules, miss.counts, strict=True)) == sorted(
            [(other.pk, None), (counted.pk, 1)]
        )
        assert (miss.kind, miss.key, miss.object) == (
            "ticket.opened",
            f"customer:{cust.pk}",
            f"ticket:{ticket.pk}",
        )
        assert list(Run.objects.values_list("rule_id", "outcome")) == [(fires.pk, "fired")]
    [shown] = runs(a, other)
    assert (shown.outcome, shown.matched, shown.count, shown.subject, shown.values) == (
        "not_matched",
        False,
        None,
        f"ticket:{ticket.pk}",
        {"product_model": "DN50"},
    )
    [shown] = runs(a, counted)
    assert (shown.count, shown.subject, shown.values) == (
        1,
        f"customer:{cust.pk}",
        {"product_model": "DN50"},
    )


def test_runs_and_misses_keep_the_events_order(world):
    a = world.a
    customer(a)
    r = rule(a, condition='product_model == "DN50"', cooldown_minutes=0, to_role="manager")
    for number, model in enumerate(["DN80", "DN50", "DN80", "DN50", "DN80"], start=1):
        enquiry(a, number, model=model)
    drain(a)  # one batch: runs and misses share its clock
    assert [run.outcome for run in runs(a, r)] == [
        "not_matched",
        "fired",
        "not_matched",
        "fired",
        "not_matched",
    ]
    with tenant_context(a.tenant):
        latest = history(r, latest=2)
    assert [run.outcome for run in latest] == ["not_matched", "fired"]


def test_a_condition_that_cannot_be_evaluated_is_a_run_with_its_reason(world):
    a = world.a
    customer(a)
    r = rule(a, condition="nps > 8", to_role="manager")  # a new ticket has no score yet
    enquiry(a, 1)
    drain(a)
    with tenant_context(a.tenant):
        [run] = Run.objects.filter(rule=r)
        assert not Miss.objects.filter(rules__contains=[r.pk]).exists()
    assert (run.outcome, run.matched) == ("not_matched", False)
    assert run.detail


def test_the_admin_lists_them_with_the_rules_names(world, en):
    a = world.a
    customer(a)
    r = rule(a, name="只看DN80", condition='product_model == "DN80"', to_role="manager")
    enquiry(a, 1)
    drain(a)
    with tenant_context(a.tenant):
        miss = Miss.objects.get()
    client = en(a.admin)
    listing = client.get(reverse("admin:automation_miss_changelist"))
    assert listing.status_code == 200
    assert miss.object in listing.content.decode()
    page = client.get(reverse("admin:automation_miss_change", args=[miss.pk]))
    assert page.status_code == 200
    assert r.name in page.content.decode()
