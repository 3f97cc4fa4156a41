"""A contact changed jobs, recorded from the customer page (customers.views.contact_left):
the `contact.changed_jobs` event and its audit row as from the admin's edit, the preset
reacting to it, the control on each row not marked as left, field errors that keep the
input, and 404 for whoever may not write on the customer or names a contact not its own."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from automation.models import Rule, Task
from automation.presets import presets_add
from crm.models import AuditEvent, OutboxEvent, Role
from crm.tenancy import tenant_context
from customers.models import Contact, Customer
from tests.automation.helpers import drain, outcomes
from tests.factories import MembershipFactory
from tests.leads.factories import make_rep

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
JOB_PRESET = "A key contact changed jobs → relationship task"


def a_contact(side, *, name="恒力液压", contact_name="王工", role="decision_maker", **fields):
    with tenant_context(side.tenant):
        customer = Customer.objects.filter(name=name).first() or Customer.objects.create(
            tenant=side.tenant, name=name, owner=side.rep
        )
        contact = Contact.objects.create(
            tenant=side.tenant,
            customer=customer,
            name=contact_name,
            title="采购经理",
            role=role,
            **fields,
        )
    return customer, contact


def left_url(customer, contact) -> str:
    return reverse("customers:contact_left", args=[customer.public_id, contact.public_id])


def detail_url(customer) -> str:
    return reverse("customers:detail", args=[customer.public_id])


def job_events(side) -> list[OutboxEvent]:
    with tenant_context(side.tenant):
        return list(OutboxEvent.objects.filter(kind="contact.changed_jobs").order_by("id"))


def job_audits(side) -> list[AuditEvent]:
    with tenant_context(side.tenant):
        return list(AuditEvent.objects.filter(action="contact.changed_jobs").order_by("id"))


def stored(side, contact) -> tuple[bool, str]:
    with tenant_context(side.tenant):
        contact.refresh_from_db()
    return contact.has_left, contact.new_company


def test_a_contact_who_left_is_one_event_and_one_audit_row(world, en):
    customer, contact = a_contact(world.a)
    client = en(world.a.rep)  # the customer's owner
    data = {"has_left": "on", "new_company": " 宁波海天 "}
    response = client.post(left_url(customer, contact), data, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="customer-contacts"' in html  # the contacts card
    assert "Has left · now at 宁波海天" in html
    assert 'data-testid="contact-left-control"' not in html
    assert stored(world.a, contact) == (True, "宁波海天")
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
    [row] = job_audits(world.a)
    assert row.actor == world.a.rep.user and row.object_id == str(contact.public_id)
    assert row.changes == {"has_left": [False, True], "new_company": ["", "宁波海天"]}

    # The same again changes nothing; an empty company keeps the one stored.
    client.post(left_url(customer, contact), data, headers=HX)
    client.post(left_url(customer, contact), {"has_left": "on"}, headers=HX)
    assert stored(world.a, contact) == (True, "宁波海天")
    assert len(job_events(world.a)) == 1 and len(job_audits(world.a)) == 1
    # Another company named for a contact who left: a job change (contact_changed_jobs).
    client.post(left_url(customer, contact), {"has_left": "on", "new_company": "海天精工"})
    assert stored(world.a, contact) == (True, "海天精工")
    assert [e.data["new_company"] for e in job_events(world.a)] == ["宁波海天", "海天精工"]
    assert len(job_audits(world.a)) == 2


def test_without_javascript_a_post_redirects_back_to_the_page(world, en):
    customer, contact = a_contact(world.a)
    client = en(world.a.manager)
    response = client.post(left_url(customer, contact), {"has_left": "on"})
    assert response.status_code == 302
    assert response["Location"] == detail_url(customer) + "#customer-contacts"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "Job change recorded." in html
    assert 'data-testid="contact-left"' in html and "now at" not in html
    assert stored(world.a, contact) == (True, "")
    [row] = job_audits(world.a)
    assert row.actor == world.a.manager.user
    # The whole list stays the whole list.
    response = client.post(left_url(customer, contact), {"has_left": "on", "contacts": "all"})
    assert response["Location"] == detail_url(customer) + "?contacts=all#customer-contacts"


def test_the_preset_reacts_to_a_job_change_recorded_on_the_page(world, en):
    # The presets are named in the active language: here English, whatever an earlier
    # test's request left active in this thread.
    with tenant_context(world.a.tenant), translation.override("en"):
        presets_add(tenant=world.a.tenant, acting_member=world.a.admin)
        rule = Rule.objects.get(name=JOB_PRESET)
        rule.is_active = True
        rule.save()
    customer, key = a_contact(world.a)
    _customer, nobody = a_contact(world.a, contact_name="李工", role="")
    client = en(world.a.rep)
    for contact in (key, nobody):
        response = client.post(left_url(customer, contact), {"has_left": "on"}, headers=HX)
        assert response.status_code == 200
    drain(world.a)
    assert sorted(outcomes(world.a, rule)) == ["fired", "not_matched"]
    with tenant_context(world.a.tenant):
        [task] = Task.objects.select_related("assignee")
    assert task.assignee == world.a.rep and task.rule_id == rule.pk
    assert task.subject == f"contact:{key.pk}"


def test_too_long_a_company_is_a_field_error_that_keeps_the_input(world, en):
    customer, contact = a_contact(world.a)
    client = en(world.a.rep)
    long_name = "宁" * 101
    data = {"has_left": "on", "new_company": long_name}
    response = client.post(left_url(customer, contact), data, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" not in html and 'id="customer-contacts"' in html
    assert 'data-testid="error-new_company"' in html
    assert "at most 100 characters" in html
    assert f'value="{long_name}"' in html
    assert '<details class="mt-1" open' in html
    # Without JavaScript: the page, with the error under the contact.
    page = client.post(left_url(customer, contact), data)
    assert page.status_code == 422
    html = page.content.decode()
    assert 'data-testid="customer-name"' in html and 'data-testid="error-new_company"' in html
    assert f'value="{long_name}"' in html
    # Not confirmed: an error too, the company kept.
    response = client.post(left_url(customer, contact), {"new_company": "宁波海天"}, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-has_left"' in html and 'value="宁波海天"' in html
    assert stored(world.a, contact) == (False, "")
    assert job_events(world.a) == [] and job_audits(world.a) == []


def test_the_control_is_on_rows_not_marked_as_left_for_those_who_may_write(world, en):
    customer, here = a_contact(world.a)
    _customer, gone = a_contact(world.a, contact_name="李工", has_left=True, new_company="宁波海天")
    html = en(world.a.rep).get(detail_url(customer)).content.decode()
    assert html.count('data-testid="contact-left-control"') == 1
    assert left_url(customer, here) in html
    assert left_url(customer, gone) not in html
    assert "Has left · now at 宁波海天" in html
    # "Show more" brings the card back with the controls.
    more = en(world.a.rep).get(
        detail_url(customer),
        {"contacts": "all"},
        headers={**HX, "HX-Target": "customer-contacts"},
    )
    assert left_url(customer, here) in more.content.decode()
    # A member who reads the customer but may not write on it gets no control.
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    page = en(marketing).get(detail_url(customer))
    assert page.status_code == 200
    assert 'data-testid="contact-left-control"' not in page.content.decode()


def test_only_who_may_write_on_the_customer_and_only_its_contacts(world, en, login):
    customer, contact = a_contact(world.a)
    other_customer, other_contact = a_contact(world.a, name="海天精工", contact_name="李工")
    _b_customer, b_contact = a_contact(world.b)
    data = {"has_left": "on", "new_company": "宁波海天"}
    other_rep = make_rep(world.a.tenant, "alpha-rep2")
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    for who in (other_rep, marketing):
        assert login(who).post(left_url(customer, contact), data).status_code == 404
    service = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    assert login(service).post(left_url(customer, contact), data).status_code == 403
    client = login(world.a.admin)
    # A contact of another customer, of another tenant, or a customer of another tenant.
    assert client.post(left_url(customer, other_contact), data).status_code == 404
    assert client.post(left_url(customer, b_contact), data).status_code == 404
    assert client.post(left_url(_b_customer, b_contact), data).status_code == 404
    assert client.get(left_url(customer, contact)).status_code == 405
    for side, item in ((world.a, contact), (world.a, other_contact), (world.b, b_contact)):
        assert stored(side, item) == (False, "")
    assert job_events(world.a) == [] and job_events(world.b) == []
    assert other_customer.pk != customer.pk
