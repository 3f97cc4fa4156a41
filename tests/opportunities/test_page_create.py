"""Opening an opportunity in one step, from a verified lead or from a customer page, and
what opportunities adds to the customer page and the lead page (crm.contributions): the
panels with their buttons, and the opportunities' history in those pages' timelines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Customer
from leads.verification import invalid_reasons, lead_verify
from opportunities import services
from opportunities.models import Opportunity
from tests.customers.panels import HX, customer_360, panel_url
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead
from tests.opportunities.helpers import make_customer, make_opportunity

pytestmark = pytest.mark.django_db

CREATE = "/opportunities/new/"


def _lead(side, owner=None):
    return make_assigned_lead(
        side.tenant,
        owner or side.rep,
        timezone.now() - timedelta(hours=1),
        phone_key="+8613812345678",
        company_key="宁波恒力液压科技",
    )


def _verified(side, owner=None):
    lead = _lead(side, owner)
    with tenant_context(side.tenant):
        return lead_verify(
            tenant=side.tenant,
            acting_member=owner or side.rep,
            lead=lead,
            outcome="valid_visit",
            visit_date=timezone.localdate() + timedelta(days=3),
        )


def test_a_verified_lead_becomes_an_opportunity_in_one_step(world, en):
    lead = _verified(world.a)
    client = en(world.a.rep)
    page = client.get(f"{CREATE}?lead={lead.public_id}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "from the verified lead" in html
    assert 'id="id_owner"' not in html  # a rep opens their own
    response = client.post(
        f"{CREATE}?lead={lead.public_id}",
        {"name": "", "product_line": "液压机", "amount": "480000", "budget_band": "pending"},
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        opp = Opportunity.objects.get()
        assert response["Location"] == reverse("opportunities:detail", args=[opp.public_id])
        assert (opp.origin_lead_id, opp.customer_id) == (lead.pk, lead.customer_id)
        assert opp.owner_id == world.a.rep.pk
        assert opp.contact_id == lead.contact_id
        assert opp.amount == Decimal("480000")
        assert opp.stage.code == "contact"
        assert opp.name.endswith("液压机")


def test_an_unverified_lead_is_refused_clearly(world, en):
    lead = _lead(world.a)
    response = en(world.a.rep).get(f"{CREATE}?lead={lead.public_id}")
    assert response.status_code == 409
    assert "Verify this lead first" in response.content.decode()
    response = en(world.a.rep).post(f"{CREATE}?lead={lead.public_id}", {"budget_band": "pending"})
    assert response.status_code == 409
    with tenant_context(world.a.tenant):
        assert not Opportunity.objects.exists()


def test_an_invalid_lead_is_refused(world, en):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome="invalid_contact",
            invalid_reason=invalid_reasons()[0],
        )
    response = en(world.a.rep).get(f"{CREATE}?lead={lead.public_id}")
    assert response.status_code == 409
    assert "verified as invalid" in response.content.decode()


def test_from_a_customer_page_a_manager_chooses_the_owner(world, en):
    customer = make_customer(world.a)
    client = en(world.a.manager)
    html = client.get(f"{CREATE}?customer={customer.public_id}").content.decode()
    assert 'id="id_owner"' in html
    # The customer's owner is chosen by default.
    assert f'<option value="{world.a.rep.public_id}" selected>' in html
    response = client.post(
        f"{CREATE}?customer={customer.public_id}",
        {
            "name": "恒力 二期",
            "budget_band": "100k_500k",
            "expected_close": "2027-01",
            "owner": str(world.a.rep.public_id),
        },
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        opp = Opportunity.objects.get()
        assert (opp.customer_id, opp.owner_id, opp.origin_lead_id) == (
            customer.pk,
            world.a.rep.pk,
            None,
        )
        assert str(opp.expected_close) == "2027-01-01"


def test_creation_errors_are_field_errors(world, en):
    customer = make_customer(world.a)
    response = en(world.a.rep).post(
        f"{CREATE}?customer={customer.public_id}", {"amount": "-1", "budget_band": "nonsense"}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-amount"' in html and 'data-testid="error-budget_band"' in html


def test_another_tenants_or_another_reps_customer_and_lead_are_404(world, en):
    their_customer = make_customer(world.b)
    their_lead = _verified(world.b)
    client = en(world.a.manager)
    assert client.get(f"{CREATE}?customer={their_customer.public_id}").status_code == 404
    assert client.get(f"{CREATE}?lead={their_lead.public_id}").status_code == 404
    assert client.post(f"{CREATE}?lead={their_lead.public_id}", {}).status_code == 404
    colleague = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    colleagues_customer = make_customer(world.a, name="别家", owner=colleague)
    colleagues_lead = _verified(world.a, owner=colleague)
    assert en(world.a.rep).get(f"{CREATE}?lead={colleagues_lead.public_id}").status_code == 404
    url = f"{CREATE}?customer={colleagues_customer.public_id}"
    assert en(world.a.rep).get(url).status_code == 404
    assert client.get(CREATE).status_code == 404
    assert client.get(f"{CREATE}?customer=not-a-uuid").status_code == 404


def test_who_may_not_open_opportunities_gets_403(world, en):
    customer = make_customer(world.a)
    for role in (Role.SERVICE, Role.MARKETING):
        member = MembershipFactory(tenant=world.a.tenant, role=role)
        assert en(member).get(f"{CREATE}?customer={customer.public_id}").status_code == 403


# -- the customer page ----------------------------------------------------------------------


def _customer_page(customer):
    return reverse("customers:detail", args=[customer.public_id])


def test_the_customer_page_lists_its_opportunities_with_the_new_button(world, en):
    opp = make_opportunity(world.a, amount=Decimal("480000"), name="恒力液压 · 液压机")
    html = customer_360(en(world.a.rep), opp.customer)
    assert 'data-testid="customer-opportunities"' in html
    assert reverse("opportunities:detail", args=[opp.public_id]) in html
    assert "¥480,000" in html
    assert f"{CREATE}?customer={opp.customer.public_id}" in html
    # The opportunity's history is in the customer's timeline, without its amount.
    assert "Opportunity: Created" in html
    assert "恒力液压 · 液压机 · Opened in 初步接触" in html


def test_a_service_agent_sees_the_panel_without_amounts_or_the_button(world, en):
    opp = make_opportunity(world.a, amount=Decimal("480000"))
    with tenant_context(world.a.tenant):
        services.opportunity_update(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            opportunity=opp,
            changes={"amount": Decimal("520000")},
        )
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    html = customer_360(en(agent), opp.customer)
    assert 'data-testid="customer-opportunities"' in html
    assert "480,000" not in html and "520,000" not in html
    assert "The amount was changed." in html
    assert 'data-testid="new-opportunity"' not in html


def test_the_customer_page_keeps_a_constant_number_of_queries(
    world, en, django_assert_max_num_queries
):
    customer = make_customer(world.a)
    client = en(world.a.manager)
    url = _customer_page(customer)
    make_opportunity(world.a, customer=customer)
    panel = panel_url(customer, "opportunities")
    client.get(url)
    with django_assert_max_num_queries(40) as few:
        assert client.get(url).status_code == 200
    with django_assert_max_num_queries(40) as few_panel:
        assert client.get(panel, headers=HX).status_code == 200
    for i in range(5):
        make_opportunity(world.a, customer=customer, name=f"商机{i}")
    with django_assert_max_num_queries(len(few)):
        assert client.get(url).status_code == 200
    with django_assert_max_num_queries(len(few_panel)):
        assert client.get(panel, headers=HX).status_code == 200


# -- the lead page --------------------------------------------------------------------------


def test_the_lead_page_offers_to_convert_a_verified_lead(world, en):
    lead = _verified(world.a)
    html = en(world.a.rep).get(reverse("leads:detail", args=[lead.public_id])).content.decode()
    assert 'data-testid="lead-opportunities"' in html
    assert f"{CREATE}?lead={lead.public_id}" in html
    assert "No opportunity came from this lead yet." in html


def test_the_lead_page_lists_the_opportunities_that_came_from_it(world, en):
    lead = _verified(world.a)
    with tenant_context(world.a.tenant):
        customer = Customer.objects.get(pk=lead.customer_id)
    opp = make_opportunity(world.a, customer=customer, origin_lead=lead, name="恒力 · 来自线索")
    html = en(world.a.rep).get(reverse("leads:detail", args=[lead.public_id])).content.decode()
    assert reverse("opportunities:detail", args=[opp.public_id]) in html
    # And its history in the lead's timeline.
    assert "恒力 · 来自线索 · Opened in 初步接触" in html


def test_an_unverified_lead_has_no_convert_button(world, en):
    lead = _lead(world.a)
    html = en(world.a.rep).get(reverse("leads:detail", args=[lead.public_id])).content.decode()
    assert 'data-testid="lead-opportunities"' in html
    assert 'data-testid="convert-lead"' not in html
