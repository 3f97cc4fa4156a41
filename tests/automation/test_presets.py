"""The presets at work: a key contact's job change (an admin's edit → `contact.changed_jobs`
→ a relationship task for the customer's owner)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from automation.models import Rule, Task
from automation.presets import presets_add
from crm.models import AuditEvent, OutboxEvent
from crm.tenancy import tenant_context
from customers.models import Contact, Customer
from tests.automation.helpers import drain, outcomes, runs

pytestmark = pytest.mark.django_db

JOB_PRESET = "A key contact changed jobs → relationship task"


def a_contact(side, *, role="decision_maker", title="采购经理", name="恒力液压"):
    with tenant_context(side.tenant):
        customer = Customer.objects.create(tenant=side.tenant, name=name, owner=side.rep)
        contact = Contact.objects.create(
            tenant=side.tenant,
            customer=customer,
            name="王工",
            phone="13800138000",
            phone_key="+8613800138000",
            title=title,
            role=role,
        )
    return customer, contact


def contact_form(contact, **changes) -> dict:
    data = {
        "customer": contact.customer_id,
        "name": contact.name,
        "phone": contact.phone,
        "email": contact.email,
        "title": contact.title,
        "role": contact.role,
        "new_company": contact.new_company,
        "created_at_0": "2026-01-05",
        "created_at_1": "09:00:00",
    }
    if contact.has_left:
        data["has_left"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def edit(client, contact, **changes):
    url = reverse("admin:customers_contact_change", args=[contact.pk])
    response = client.post(url, contact_form(contact, **changes))
    assert response.status_code == 302, response.context["adminform"].form.errors


def job_events(side) -> list[OutboxEvent]:
    with tenant_context(side.tenant):
        return list(OutboxEvent.objects.filter(kind="contact.changed_jobs").order_by("id"))


def switched_on(side, name) -> Rule:
    # The presets are named in the active language: here English, whatever an earlier
    # test's request left active in this thread.
    with tenant_context(side.tenant), translation.override("en"):
        presets_add(tenant=side.tenant, acting_member=side.admin)
        rule = Rule.objects.get(name=name)
        rule.is_active = True
        rule.save()
        return rule


def tasks(side) -> list[Task]:
    with tenant_context(side.tenant):
        return list(Task.objects.select_related("assignee").order_by("id"))


def test_edits_that_are_no_job_change_emit_nothing(world, en):
    _customer, contact = a_contact(world.a, title="")
    client = en(world.a.admin)
    edit(client, contact, phone="13900139000")  # a new phone
    edit(client, contact, title="采购经理")  # a title filled in for the first time
    assert job_events(world.a) == []


def test_a_contact_marked_as_having_left_is_an_event_about_its_customer(world, en):
    customer, contact = a_contact(world.a)
    edit(en(world.a.admin), contact, has_left="on", new_company="宁波海天")
    [event] = job_events(world.a)
    assert (event.object_type, event.object_id) == ("customers.contact", contact.pk)
    assert event.key == f"customer:{customer.pk}"
    assert event.data == {
        "contact_name": "王工",
        "role": "decision_maker",
        "title": "采购经理",
        "previous_title": "采购经理",
        "left": True,
        "new_company": "宁波海天",
        "moved": False,
        "customer_id": customer.pk,
        "owner_id": world.a.rep.pk,
    }
    with tenant_context(world.a.tenant):
        assert AuditEvent.objects.filter(action="contact.changed_jobs").count() == 1


def test_a_new_title_and_a_move_to_another_customer_are_job_changes(world, en):
    customer, contact = a_contact(world.a)
    other, _c = a_contact(world.a, name="海天精工")
    client = en(world.a.admin)
    edit(client, contact, title="总经理")
    with tenant_context(world.a.tenant):
        contact.refresh_from_db()
    edit(client, contact, customer=other.pk)
    first, moved = job_events(world.a)
    assert (first.data["previous_title"], first.data["title"]) == ("采购经理", "总经理")
    assert moved.data["moved"] and moved.key == f"customer:{customer.pk}"  # the one it left


def test_the_customers_contacts_inline_records_a_job_change_too(world, en):
    customer, contact = a_contact(world.a)
    prefix = "contacts"
    data = {
        "name": customer.name,
        "code": "",
        "level": customer.level,
        "industry": "",
        "province": "",
        "city": "",
        "owner": world.a.rep.pk,
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "1",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
        f"{prefix}-0-id": contact.pk,
        f"{prefix}-0-customer": customer.pk,
        f"{prefix}-0-name": "王工",
        f"{prefix}-0-phone": contact.phone,
        f"{prefix}-0-email": "",
        f"{prefix}-0-title": "采购经理",
        f"{prefix}-0-role": "decision_maker",
        f"{prefix}-0-has_left": "on",
        f"{prefix}-0-new_company": "",
    }
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = en(world.a.admin).post(url, data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.errors for f in response.context["inline_admin_formsets"][0].formset],
    )
    [event] = job_events(world.a)
    assert event.data["left"] and event.object_id == contact.pk


def test_the_preset_gives_the_owner_a_relationship_task_for_a_key_contact_only(world, en):
    rule = switched_on(world.a, JOB_PRESET)
    _customer, key = a_contact(world.a)
    _other, nobody = a_contact(world.a, role="", name="海天精工")
    client = en(world.a.admin)
    edit(client, key, has_left="on")
    edit(client, nobody, has_left="on")
    drain(world.a)
    assert sorted(outcomes(world.a, rule)) == ["fired", "not_matched"]
    [task] = tasks(world.a)
    assert task.assignee == world.a.rep and task.rule_id == rule.pk
    assert task.subject == f"contact:{key.pk}"
    # Tenant b's preset hears nothing of tenant a's contacts.
    other_rule = switched_on(world.b, JOB_PRESET)
    drain(world.b)
    assert outcomes(world.b, other_rule) == [] and tasks(world.b) == []


# -- "a customer entered the risk list → retention task": on for every tenant ------------------


def quiet_customers(side, *names):
    from health import compute
    from tests.health.helpers import customer, interaction, moment

    today = compute.local_today(side.tenant)
    for name in names:
        cust = customer(side, name, owner=side.rep)
        interaction(side, cust, moment(side, 20, today))
    with tenant_context(side.tenant):
        return compute.recompute(side.tenant, day=today)


def drained(side, capture) -> None:
    """The drain, committed (its after-commit notifications sent), as the worker does."""
    from django.db import transaction

    with capture(execute=True), transaction.atomic():
        drain(side)


def stays(side):
    from health.models import RiskEntry

    with tenant_context(side.tenant):
        return list(RiskEntry.objects.order_by("id"))


def told(side, event="health.risk_entered"):
    from crm.models import Notification

    with tenant_context(side.tenant):
        return list(Notification.objects.filter(event=event).order_by("id"))


def risk_rule(side) -> Rule:
    with tenant_context(side.tenant):
        return Rule.objects.get(action="retention_task")


def board_tasks(side):
    from health.board import open_tasks

    with tenant_context(side.tenant):
        return list(open_tasks(side.rep))


def test_every_tenant_starts_with_the_risk_rule_on(world):
    from automation.presets import risk_rule_ensure
    from tests.factories import TenantFactory

    for side in (world.a, world.b):
        rule = risk_rule(side)
        assert rule.is_active and rule.to_owner and rule.trigger == "health.risk_entered"
        with tenant_context(side.tenant):
            assert risk_rule_ensure(side.tenant) is None  # once
    newcomer = TenantFactory(slug="gamma")
    with tenant_context(newcomer):
        assert Rule.objects.filter(action="retention_task", is_active=True).count() == 1


def test_the_rule_gives_todays_new_stays_their_task_and_tells_the_owner_once(
    world, django_capture_on_commit_callbacks
):
    a = world.a
    assert quiet_customers(a, "恒力液压", "东方机电").entered == 2
    # Opened by the recompute, the stays wait for the rule: no task, nobody told yet.
    assert [s.task_at for s in stays(a)] == [None, None]
    assert board_tasks(a) == [] and told(a) == []
    drained(a, django_capture_on_commit_callbacks)
    assert all(s.task_at is not None for s in stays(a))
    assert [e.pk for e in board_tasks(a)] == sorted(s.pk for s in stays(a))[::-1]
    [note] = told(a)  # one per owner, naming the customers, as before the rule
    assert note.recipient_id == a.rep.pk and note.params["count"] == 2
    assert "恒力液压" in note.params["customers"] and "东方机电" in note.params["customers"]
    assert outcomes(a, risk_rule(a)) == ["fired", "fired"]
    # No second task (a rule's board task) and no second notification (the rule's own).
    assert tasks(a) == [] and told(a, "automation.rule_fired") == []
    drained(a, django_capture_on_commit_callbacks)
    assert len(told(a)) == 1
    # Tenant b: nothing of it.
    assert stays(world.b) == [] and told(world.b) == []


def test_a_second_rule_with_the_action_gives_no_second_task_or_notice(
    world, django_capture_on_commit_callbacks, english
):
    a = world.a
    first = risk_rule(a)
    with tenant_context(a.tenant):
        copy = Rule.objects.create(
            tenant=a.tenant,
            name="Customer entered the risk list → retention task",
            trigger="health.risk_entered",
            action="retention_task",
            to_owner=True,
            is_active=True,
        )
    quiet_customers(a, "恒力液压")
    drained(a, django_capture_on_commit_callbacks)
    assert len(told(a)) == 1 and len(board_tasks(a)) == 1
    details = [r.detail for r in runs(a, first) + runs(a, copy)]
    assert sum("given already" in d for d in details) == 1, details


def test_switched_off_the_rule_gives_no_task_and_tells_nobody(
    world, django_capture_on_commit_callbacks
):
    from django.core.exceptions import ValidationError

    from health.risk import risk_task_done

    a = world.a
    with tenant_context(a.tenant):
        Rule.objects.filter(action="retention_task").update(is_active=False)
    quiet_customers(a, "恒力液压")
    drained(a, django_capture_on_commit_callbacks)
    [stay] = stays(a)
    assert stay.task_at is None and board_tasks(a) == [] and told(a) == []
    with tenant_context(a.tenant), pytest.raises(ValidationError):
        risk_task_done(tenant=a.tenant, acting_member=a.rep, entry=stay)


def test_the_retention_action_is_only_for_the_risk_event(world, en):
    response = en(world.a.admin).post(
        reverse("admin:automation_rule_add"),
        {
            "name": "x",
            "trigger": "ticket.opened",
            "action": "retention_task",
            "to_owner": "on",
            "count_days": "30",
            "cooldown_minutes": "1440",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "This action is for other events" in " ".join(errors["action"])
