"""Rules in the tenant admin: field errors for unknown fields, wrong types and actions the
recipients or the event cannot take; the dry run's figures against a hand count (nothing
saved); "why did it not fire"; resuming; another tenant's rule and run ids answering 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automation.models import Rule, Run
from crm.tenancy import tenant_context
from tests.automation.helpers import customer, drain, enquiry, rule

pytestmark = pytest.mark.django_db
ADD = reverse("admin:automation_rule_add")


def form(**changes) -> dict:
    data = {
        "name": "同型号三次",
        "trigger": "ticket.opened",
        "condition": "",
        "count_at_least": "",
        "count_days": "30",
        "count_same": "",
        "action": "notify",
        "to_role": "manager",
        "message": "建议小批量试产",
        "level": "",
        "webhook_url": "",
        "webhook_secret": "",
        "cooldown_minutes": "1440",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def errors(response) -> dict:
    return {name: list(errs) for name, errs in response.context["adminform"].form.errors.items()}


def rules(side) -> list[Rule]:
    """The side's rules but the risk preset every tenant starts with (automation.presets)."""
    with tenant_context(side.tenant):
        return list(Rule.objects.exclude(action="retention_task").order_by("pk"))


def test_a_valid_rule_is_saved_off_by_default(world, en):
    response = en(world.a.admin).post(ADD, form(count_at_least="3", count_same="product_model"))
    assert response.status_code == 302
    [saved] = rules(world.a)
    assert saved.tenant == world.a.tenant and not saved.is_active
    assert saved.same_fields == ["product_model"]


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"condition": "colour == 'red'"}, "condition", "Unknown field colour"),
        ({"condition": "nps > 'high'"}, "condition", "wrong type"),
        ({"condition": "nps >"}, "condition", "not a valid expression"),
        ({"count_same": "model_no", "count_at_least": "3"}, "count_same", "Unknown fields"),
        ({"to_role": "", "to_owner": None}, "to_role", "Choose who"),
        ({"trigger": "ticket.closed", "to_owner": "on"}, "to_owner", "has no owner"),
        ({"action": "task", "to_role": "service"}, "to_role", "no daily board"),
        ({"action": "set_level", "trigger": "lead.created", "level": "A"}, "action", "not about"),
        ({"action": "set_level"}, "level", "Choose the level"),
        ({"action": "webhook", "webhook_url": "http://127.0.0.1/x"}, "webhook_url", "Refused"),
    ],
)
def test_mistakes_are_errors_on_their_fields(world, en, settings, changes, field, text):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    response = en(world.a.admin).post(ADD, form(**changes))
    assert response.status_code == 200
    found = errors(response)
    assert field in found, found
    assert any(text in e for e in found[field]), found[field]
    assert rules(world.a) == []


def test_a_task_for_a_member_without_a_board_is_refused(world, en):
    from tests.factories import MembershipFactory

    agent = MembershipFactory(tenant=world.a.tenant, role="service")
    response = en(world.a.admin).post(ADD, form(action="task", to_role="", to_member=str(agent.pk)))
    assert "to_member" in errors(response)


def test_the_dry_run_counts_what_it_would_have_done_and_saves_nothing(world, en):
    a = world.a
    customer(a)
    customer(a, name="华东阀门", phone="13900139000")
    # By hand: the first customer asks about DN50 three times (fires at the 3rd; the
    # 4th is still true), the second twice (never 3). So 1 firing, 1 subject, one
    # notification to each of the tenant's managers (one).
    for n in range(1, 5):
        enquiry(a, n)
    enquiry(a, 5, phone="13900139000")
    enquiry(a, 6, phone="13900139000")
    drain(a)
    data = form(count_at_least="3", count_same="product_model", _dryrun="1")
    response = en(a.admin).post(ADD, data)
    assert response.status_code == 200
    result = response.context["dry_run"]
    assert (result.events, result.fired, result.subject_count) == (6, 1, 1)
    assert dict(result.recipients) == {a.manager.display_name: 1}
    page = response.content.decode()
    assert "it would have fired 1 times, for 1 subjects" in page
    assert rules(a) == []


def test_why_did_it_not_fire(world, en):
    a = world.a
    cust = customer(a)
    r = rule(a, count_at_least=3, count_same="product_model", to_role="manager")
    enquiry(a, 1)
    enquiry(a, 2)
    drain(a)
    url = reverse("admin:automation_rule_change", args=[r.pk])
    response = en(a.admin).get(url, {"subject": cust.name})
    why = response.context["why"]
    assert why.subject == f"customer:{cust.pk}" and why.events == 2
    assert [run.count for run in why.runs] == [2, 1]
    assert "Condition false" in why.reason
    other = en(a.admin).get(url, {"subject": "customer:999999"}).context["why"]
    assert "No event of its kind" in other.reason


def test_resume_clears_the_pause(world, en):
    from django.utils import timezone

    r = rule(world.a, paused_at=timezone.now(), consecutive_failures=3, last_error="HTTP 500")
    en(world.a.admin).post(
        reverse("admin:automation_rule_changelist"),
        {"action": "resume", "_selected_action": [r.pk]},
    )
    with tenant_context(world.a.tenant):
        r.refresh_from_db()
    assert (r.paused_at, r.consecutive_failures, r.last_error) == (None, 0, "")


def test_a_rep_cannot_open_the_rules(world, login):
    assert login(world.a.rep).get(reverse("admin:automation_rule_changelist")).status_code == 403


def test_it_hides_other_tenants(world, en):
    customer(world.b)
    theirs = rule(world.b, count_at_least=1, to_role="manager")
    enquiry(world.b, 1)
    drain(world.b)
    with tenant_context(world.b.tenant):
        run = Run.objects.get(rule=theirs)
    client = en(world.a.admin)
    for url in (
        reverse("admin:automation_rule_change", args=[theirs.pk]),
        reverse("admin:automation_rule_delete", args=[theirs.pk]),
        reverse("admin:automation_run_change", args=[run.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(
            reverse("admin:automation_rule_change", args=[theirs.pk]), form(_dryrun="1")
        ).status_code
        == 404
    )
    assert (
        client.get(
            reverse("admin:automation_rule_change", args=[theirs.pk]), {"subject": "x"}
        ).status_code
        == 404
    )
    listing = client.get(reverse("admin:automation_run_changelist")).content.decode()
    assert theirs.name not in listing
