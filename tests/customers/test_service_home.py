"""Service agents (F43: "they see sales context"): their home page shows the customers most
recently in contact with sales and the newest leads of existing customers; they read the
customer list and pages, and change nothing there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from tests.customers.panels import customer_360
from tests.customers.test_list import follow_up, make_customer
from tests.factories import MembershipFactory
from tests.leads.factories import make_lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(world):
    return MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)


def test_a_service_agent_lands_on_a_home_with_sales_context(world, login, agent):
    now = timezone.now()
    quiet = make_customer(world.a, "很久没联系的客户")
    busy = make_customer(world.a, "刚联系过的客户")
    follow_up(world.a, quiet, now - timedelta(days=20))
    follow_up(world.a, busy, now - timedelta(hours=1))
    make_customer(world.a, "从未联系的客户")
    make_lead(world.a.tenant, customer=busy, status="valid", message="设备报修后想加购一台")
    outsider = make_customer(world.b, "外租户客户")
    follow_up(world.b, outsider, now)
    make_lead(world.b.tenant, customer=outsider, status="valid")

    response = login(agent).get("/")
    assert response.status_code == 200  # no redirect: the home page is theirs
    page = response.text
    recent = page[page.index('data-testid="recent-customers"') :]
    assert recent.index("刚联系过的客户") < recent.index("很久没联系的客户")
    assert "从未联系的客户" not in page and "外租户客户" not in page
    assert reverse("customers:detail", args=[busy.public_id]) in recent
    leads = page[page.index('data-testid="customer-leads"') :]
    assert "设备报修后想加购一台" in leads and "刚联系过的客户" in leads
    # The menu leads to the customer list; nothing of sales' own pages.
    assert f'href="{reverse("customers:list")}"' in page
    assert reverse("leads:list") not in page and reverse("board:board") not in page


def test_the_service_home_takes_a_constant_number_of_queries(world, login, agent):
    client = login(agent)
    now = timezone.now()

    def add(n, start):
        for i in range(start, start + n):
            customer = make_customer(world.a, f"客户{i:03d}")
            follow_up(world.a, customer, now - timedelta(hours=i))
            make_lead(world.a.tenant, customer=customer, status="valid", owner=world.a.rep)

    add(2, 0)
    client.get("/")
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    add(20, 2)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/").text.count('data-testid="recent-customer"') == 8
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_a_service_agent_reads_customers_and_changes_nothing(world, login, agent):
    customer = make_customer(world.a, "某客户", phone="+8613800138000", contact="王工")
    lead = make_lead(world.a.tenant, customer=customer, status="valid", owner=world.a.rep)
    client = login(agent)
    text = customer_360(client, customer)  # the page and its panels
    assert "某客户" in text and "138 0013 8000" in text
    assert 'data-testid="follow-up-card"' not in text
    # The lead is listed for context; its page (assignment, verification) is sales'.
    assert reverse("leads:detail", args=[lead.public_id]) not in text
    assert client.get(reverse("leads:detail", args=[lead.public_id])).status_code == 403
    follow_up_url = reverse("customers:follow_up", args=[customer.public_id])
    assert client.get(follow_up_url).status_code == 403
    assert client.post(follow_up_url, {}).status_code == 403
    # Another tenant's customer does not exist for them.
    other = make_customer(world.b, "外租户客户")
    assert client.get(reverse("customers:detail", args=[other.public_id])).status_code == 404
