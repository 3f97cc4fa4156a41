"""The engine: conditions, windowed counts, each action, and the safe defaults (false →
true, cool-down, dedup, chain depth, own change, the 3-failure pause), per tenant."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from automation import actions
from automation.models import Firing, Rule, RuleState, Task
from crm import events
from crm.models import Notification, OutboxEvent
from crm.tenancy import tenant_context
from customers.models import Customer
from tests.automation.helpers import customer, drain, enquiry, outcomes, rule, runs

pytestmark = pytest.mark.django_db


def notes(side, member):
    with tenant_context(side.tenant):
        return list(Notification.objects.filter(recipient=member, event=actions.FIRED_EVENT))


def test_the_same_model_three_times_in_30_days_tells_the_planner(world):
    a = world.a
    customer(a)
    r = rule(
        a,
        count_at_least=3,
        count_days=30,
        count_same="product_model",
        to_role="manager",
        message="同一型号咨询三次：建议小批量试产",
    )
    enquiry(a, 1)
    enquiry(a, 2, model="DN80")  # another model does not count
    enquiry(a, 3)
    drain(a)
    assert outcomes(a, r) == ["not_matched"] * 3
    assert [run.count for run in runs(a, r)] == [1, 1, 2]
    assert notes(a, a.manager) == []
    enquiry(a, 4)
    drain(a)
    last = runs(a, r)[-1]
    assert (last.outcome, last.count) == ("fired", 3)
    assert last.values == {"product_model": "DN50"}
    [note] = notes(a, a.manager)
    assert note.params["message"] == "同一型号咨询三次：建议小批量试产"
    assert notes(a, a.rep) == []


def test_events_older_than_the_window_do_not_count(world):
    a = world.a
    customer(a)
    r = rule(a, count_at_least=2, count_days=30, count_same="product_model", to_role="manager")
    old = enquiry(a, 1)
    with tenant_context(a.tenant):
        OutboxEvent.objects.filter(object_id=old.pk).update(at=timezone.now() - timedelta(days=31))
    enquiry(a, 2)
    drain(a)
    assert [run.count for run in runs(a, r)] == [1, 1]  # the old one counts only for itself
    assert outcomes(a, r) == ["not_matched", "not_matched"]


def test_a_condition_is_typed_over_the_events_fields(world):
    a = world.a
    customer(a)
    r = rule(a, condition='product_model =~ "DN5.*" and status == "open"', to_role="manager")
    enquiry(a, 1, model="DN80")
    enquiry(a, 2, model="DN50")
    drain(a)
    first, second = runs(a, r)
    assert (first.outcome, first.matched, first.values) == (
        "not_matched",
        False,
        {"product_model": "DN80", "status": "open"},
    )
    assert (second.outcome, second.matched) == ("fired", True)


def test_it_fires_on_false_to_true_not_while_it_stays_true(world):
    a = world.a
    customer(a)
    r = rule(
        a,
        condition='product_model == "DN50"',
        count_at_least=1,
        cooldown_minutes=0,
        to_role="manager",
    )
    enquiry(a, 1)
    enquiry(a, 2)  # still true: not again
    enquiry(a, 3, model="DN80")  # false
    enquiry(a, 4)  # true again: fires (no cool-down)
    drain(a)
    assert outcomes(a, r) == ["fired", "still_true", "not_matched", "fired"]
    assert len(notes(a, a.manager)) == 2


def test_the_cooldown_holds_a_second_firing_for_the_subject(world):
    a = world.a
    customer(a)
    r = rule(
        a,
        condition='product_model == "DN50"',
        count_at_least=1,
        cooldown_minutes=60,
        to_role="manager",
    )
    enquiry(a, 1)
    enquiry(a, 2, model="DN80")
    enquiry(a, 3)
    drain(a)
    assert outcomes(a, r) == ["fired", "not_matched", "cooldown"]
    assert len(notes(a, a.manager)) == 1


def test_the_dedup_row_stops_a_second_firing_in_the_same_window(world):
    """What a second worker finds when it evaluates the same change: the firing row."""
    a = world.a
    customer(a)
    r = rule(a, count_at_least=1, to_role="manager")
    enquiry(a, 1)
    drain(a)
    with tenant_context(a.tenant):
        RuleState.objects.filter(rule=r).update(is_true=False, last_fired_at=None)
        assert Firing.objects.filter(rule=r).count() == 1
    enquiry(a, 2)
    drain(a)
    assert outcomes(a, r) == ["fired", "duplicate"]
    assert len(notes(a, a.manager)) == 1


def test_a_task_goes_on_the_owners_board(world):
    from automation.board import open_tasks

    a = world.a
    customer(a)
    r = rule(a, trigger="followup.logged", action="task", to_owner=True, message="回访客户")
    from tests.opportunities.helpers import log_follow_up, make_opportunity

    opp = make_opportunity(a)
    log_follow_up(a, opp)  # followup.logged has no owner_id: nobody → failed
    drain(a)
    assert outcomes(a, r) == ["failed"]
    with tenant_context(a.tenant):
        r.to_owner, r.to_member = False, a.rep
        r.save()
    log_follow_up(a, opp)
    drain(a)
    assert outcomes(a, r)[-1] == "fired"
    with tenant_context(a.tenant):
        [task] = open_tasks(a.rep, timezone.localdate())
        assert task.title == "回访客户" and task.rule_id == r.pk


def test_set_level_changes_the_customer_and_never_retriggers_its_own_rule(world):
    a = world.a
    cust = customer(a)
    r = rule(a, trigger="customer.level_changed", action="set_level", level="A")
    first = rule(a, name="升级", action="set_level", level="B", count_at_least=1)
    enquiry(a, 1)
    drain(a)
    with tenant_context(a.tenant):
        assert Customer.objects.get(pk=cust.pk).level == "A"
        changes = list(OutboxEvent.objects.filter(kind="customer.level_changed").order_by("id"))
    assert [(e.data["level"], e.depth, e.rule_id) for e in changes] == [
        ("B", 1, first.pk),
        ("A", 2, r.pk),
    ]
    assert outcomes(a, first) == ["fired"]
    assert outcomes(a, r) == ["fired", "own_change"]


def test_a_chain_stops_at_depth_three(world):
    a = world.a
    cust = customer(a)
    steps = [("B", "A"), ("A", "C"), ("C", "B")]
    chain = [
        rule(
            a,
            name=f"{x}→{y}",
            trigger="customer.level_changed",
            condition=f'level == "{x}"',
            action="set_level",
            level=y,
        )
        for x, y in steps
    ]
    with tenant_context(a.tenant):
        from customers.services import customer_set_level

        customer_set_level(tenant=a.tenant, acting_member=a.admin, customer=cust, level="B")
    drain(a)
    with tenant_context(a.tenant):
        changes = list(
            OutboxEvent.objects.filter(kind="customer.level_changed")
            .order_by("id")
            .values_list("data__level", "depth")
        )
        assert Customer.objects.get(pk=cust.pk).level == "B"
    # B by hand, then A, C and B by the rules; the B at depth 3 triggers nothing.
    assert changes == [("B", 0), ("A", 1), ("C", 2), ("B", 3)]
    assert outcomes(a, chain[0])[-1] == "depth_limit"


def test_three_failures_in_a_row_pause_the_rule_and_tell_the_admins(world, settings):
    a = world.a
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    customer(a)
    r = rule(a, action="webhook", webhook_url="http://127.0.0.1:9/hook", cooldown_minutes=0)
    for n in range(1, 5):
        enquiry(a, n, model=f"M{n}")
    drain(a)
    assert outcomes(a, r) == ["failed"] * 3  # the fourth event finds the rule paused
    with tenant_context(a.tenant):
        r.refresh_from_db()
        assert r.paused_at is not None and r.consecutive_failures == 3
        assert "Refused" in r.last_error
        assert (
            Notification.objects.filter(recipient=a.admin, event="automation.rule_paused").count()
            == 1
        )


@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_signed(world, settings, httpserver):
    """Sent after the drain commits, outside any transaction (automation.webhooks)."""
    from automation import webhooks

    settings.NOTIFY_ALLOW_PRIVATE_URLS = True
    a = world.a
    customer(a)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    r = rule(a, action="webhook", webhook_url=httpserver.url_for("/hook"), webhook_secret="s3")
    enquiry(a, 1)
    drain(a)
    assert outcomes(a, r) == ["fired"]
    assert webhooks.send_due(a.tenant) == 1
    [(request, _response)] = httpserver.log
    body = request.get_data()
    stamp = request.headers["X-CRM-Timestamp"]
    assert request.headers["X-CRM-Signature"] == actions.signature("s3", stamp, body)
    assert json.loads(body)["data"]["product_model"] == "DN50"


def test_a_tenants_rules_see_only_its_own_events(world):
    customer(world.a)
    customer(world.b)
    mine = rule(world.a, count_at_least=1, to_role="manager")
    theirs = rule(world.b, count_at_least=1, to_role="manager")
    enquiry(world.a, 1)
    drain(world.a)
    drain(world.b)
    assert outcomes(world.a, mine) == ["fired"]
    assert outcomes(world.b, theirs) == []
    assert notes(world.b, world.b.manager) == []


def test_an_inactive_or_paused_rule_is_not_evaluated(world):
    a = world.a
    customer(a)
    off = rule(a, is_active=False, to_role="manager")
    paused = rule(a, paused_at=timezone.now(), to_role="manager")
    enquiry(a, 1)
    drain(a)
    assert outcomes(a, off) == [] and outcomes(a, paused) == []


def test_the_drain_is_events_process(world):
    a = world.a
    customer(a)
    r = rule(a, to_role="manager")
    enquiry(a, 1)
    assert events.events_process(a.tenant.pk) == 1
    assert outcomes(a, r) == ["fired"]
    with tenant_context(a.tenant):
        assert not Rule.objects.filter(pk=r.pk, paused_at__isnull=False).exists()
        assert Task.objects.count() == 0


def test_the_dry_runs_counts_in_one_statement_are_the_engines(world):
    from automation import conditions

    a = world.a
    customer(a)
    customer(a, name="华东阀门", phone="13900139000")
    for n, (model, phone, days_ago) in enumerate(
        [
            ("DN50", "13800138000", 40),
            ("DN50", "13800138000", 29),
            ("DN50", "13800138000", 0),
            ("DN80", "13800138000", 0),
            ("DN50", "13900139000", 0),
            ("DN50", "13800138000", 0),
        ],
        start=1,
    ):
        ticket = enquiry(a, n, model=model, phone=phone)
        with tenant_context(a.tenant):
            OutboxEvent.objects.filter(object_id=ticket.pk).update(
                at=timezone.now() - timedelta(days=days_ago, minutes=n)
            )
    since = timezone.now() - timedelta(days=30)
    with tenant_context(a.tenant):
        counts = conditions.window_counts(
            "ticket.opened", since=since, days=30, same=["product_model"]
        )
        shown = OutboxEvent.objects.filter(kind="ticket.opened", at__gte=since)
        expected = {
            e.pk: conditions.window_count(e, days=30, same=["product_model"]) for e in shown
        }
    assert counts == expected
    # By hand: the 29-day-old DN50 also counts the 40-day-old one (11 days before it);
    # today's two DN50s count 2 and 3; the DN80 and the other customer's DN50 count 1.
    assert sorted(counts.values()) == [1, 1, 2, 2, 3]
