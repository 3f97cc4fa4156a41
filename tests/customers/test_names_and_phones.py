"""A customer is titled the way people call it, and phones read in the national format
(`138 0013 8000`) on lead and customer pages alike; stored values stay E.164."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import translation

from crm.tenancy import tenant_context
from customers import services
from customers.models import Contact, Customer
from tests.leads.factories import make_assigned_lead

pytestmark = pytest.mark.django_db

E164 = "+8613957123481"  # a real number: a placeholder one never identifies anyone
NATIONAL = "139 5712 3481"


def _lead(side, **fields):
    fields.setdefault("company", "")
    fields.setdefault("contact_name", "")
    fields.setdefault("phone", E164)
    fields.setdefault("phone_key", fields["phone"])
    return make_assigned_lead(
        side.tenant, side.rep, datetime(2026, 3, 2, 1, 0, tzinfo=UTC), **fields
    )


def test_a_customer_without_a_company_takes_the_contacts_name(world):
    lead = _lead(world.a, contact_name="王伟")
    with tenant_context(world.a.tenant):
        customer, contact, created = services.customer_for_lead(
            tenant=lead.tenant, acting_member=None, lead=lead
        )
    assert created and customer.name == "王伟" and contact.phone == E164


def test_a_customer_known_only_by_a_phone_is_titled_by_the_national_number(world):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        customer, contact, _created = services.customer_for_lead(
            tenant=lead.tenant, acting_member=None, lead=lead
        )
        assert customer.name == NATIONAL
        assert contact.phone_key == E164  # stored for matching as E.164
        # The same person comes back with a name: the customer takes it.
        again = _lead(world.a, contact_name="李娜")
        same, _contact, created = services.customer_for_lead(
            tenant=again.tenant, acting_member=None, lead=again
        )
        assert not created and same.pk == customer.pk
        assert Customer.objects.get(pk=customer.pk).name == "李娜"


def test_a_customer_with_a_company_keeps_it_when_a_name_arrives(world):
    lead = _lead(world.a, company="宁波恒力液压科技有限公司")
    with tenant_context(world.a.tenant):
        customer, _c, _ = services.customer_for_lead(
            tenant=lead.tenant, acting_member=None, lead=lead
        )
        other = _lead(world.a, contact_name="王伟")
        services.customer_for_lead(tenant=other.tenant, acting_member=None, lead=other)
        assert Customer.objects.get(pk=customer.pk).name == "宁波恒力液压科技有限公司"


def test_titles_of_leads_and_contacts_read_the_phone_nationally(world):
    lead = _lead(world.a)
    assert str(lead) == NATIONAL
    with tenant_context(world.a.tenant):
        customer = Customer.objects.create(tenant=world.a.tenant, name="某公司")
        contact = Contact.objects.create(tenant=world.a.tenant, customer=customer, phone=E164)
    assert str(contact) == NATIONAL


def test_a_contact_known_only_by_the_senders_id_is_titled_as_such(world):
    """A WeCom contact who left no name, phone or e-mail: not a bare hex fragment."""
    lead = _lead(world.a, phone="", external_id="wmhsj8rb6mufa5avdwHuuu3A")
    with translation.override("zh-hans"):
        assert str(lead) == "未留名的联系人 Huuu3A"
        with tenant_context(world.a.tenant):
            customer, _contact, _created = services.customer_for_lead(
                tenant=lead.tenant, acting_member=None, lead=lead
            )
        assert customer.name == "未留名的联系人 Huuu3A"


def test_lead_and_customer_pages_show_national_phones(world, login):
    lead = _lead(world.a, company="宁波恒力液压科技有限公司", contact_name="王工")
    with tenant_context(world.a.tenant):
        customer, _contact, _ = services.customer_for_lead(
            tenant=lead.tenant, acting_member=None, lead=lead
        )
        lead.customer = customer
        lead.save(update_fields=["customer"])
    client = login(world.a.manager)
    listing = client.get(reverse("leads:list")).text
    page = client.get(reverse("leads:detail", args=[lead.public_id])).text
    customer_page = client.get(reverse("customers:detail", args=[customer.public_id])).text
    for text in (listing, page, customer_page):
        assert NATIONAL in text
        assert f">{E164}<" not in text and f"{E164} ·" not in text
    rep_board = login(world.a.rep).get(reverse("board:board")).text
    assert NATIONAL in rep_board and E164 not in rep_board
