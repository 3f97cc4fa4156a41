"""The customer 360 (F35): the first screen at once, the panels lazily, each within a query
budget whatever the customer holds; another tenant's customer, another rep's and an
unknown panel are 404 on the page and on every panel; the 5-rows / 12-months window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import contributions
from crm.models import Role
from crm.tenancy import tenant_context
from customers import services
from customers.models import Contact, Interaction, PresetKind
from leads.models import LeadEvent
from service_feedback.models import ReviewRead, Ticket
from tests.customers.panels import HX, customer_360, lazy_panels, panel_url
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead, make_rep
from tests.opportunities.helpers import make_opportunity
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db

PAGE = "customers.customer"
PANELS = ("opportunities", "service_review", "leads", "interactions", "timeline")


def _detail(customer):
    return reverse("customers:detail", args=[customer.public_id])


def populate(side, customer, n: int, *, start: int = 0, age=timedelta(hours=1)):
    """`n` of each thing a customer holds: contacts, follow-ups, leads with their events,
    opportunities (with their history), tickets (with a read of the review card)."""
    now = timezone.now() - age
    with tenant_context(side.tenant):
        action = services.presets(PresetKind.ACTION).first()
        channel = side.extra.get("c360_channel") or make_channel(side.tenant)
        side.extra["c360_channel"] = channel
        Contact.objects.bulk_create(
            Contact(tenant=side.tenant, customer=customer, name=f"联系人{start + i}")
            for i in range(n)
        )
        Interaction.objects.bulk_create(
            Interaction(
                tenant=side.tenant,
                customer=customer,
                by=side.rep,
                at=now - timedelta(minutes=i),
                channel="phone",
                note=f"跟进{start + i}",
                next_action=action,
                next_action_due=now.date() + timedelta(days=3),
            )
            for i in range(n)
        )
        for i in range(n):
            lead = make_lead(
                side.tenant,
                channel=channel,
                customer=customer,
                owner=side.rep,
                company=f"线索{start + i}",
                created_at=now - timedelta(minutes=i),
            )
            LeadEvent.objects.create(
                tenant=side.tenant, lead=lead, kind="intake", at=now - timedelta(minutes=i)
            )
    for i in range(n):
        make_opportunity(side, customer=customer, name=f"商机{start + i}")
        upsert(
            side,
            f"T-{start + i}",
            subject=f"工单{start + i}",
            phone="13800138000",
            opened_at=now - timedelta(minutes=i),
        )
    with tenant_context(side.tenant):
        latest = Ticket.objects.filter(customer=customer).order_by("-opened_at").first()
        ReviewRead.objects.create(
            tenant=side.tenant, customer=customer, member=side.manager, last_ticket=latest
        )


def test_the_first_screen_shows_the_profile_figures_and_first_contacts(world, en):
    customer = customer_with_contact(world.a)
    populate(world.a, customer, 7)
    response = en(world.a.manager).get(_detail(customer))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="customer-name"' in html
    figures = {key: value for key, _label, value in response.context["figures"]}
    assert figures == {"contacts": 8, "open_opportunities": 7, "tickets_12_months": 7}
    assert html.count('data-testid="contact-row"') == 5
    assert 'data-testid="contacts-more"' in html
    # Every other panel is a placeholder fetched when it comes into view.
    placeholders = lazy_panels(html)
    assert set(PANELS) <= set(placeholders)
    assert 'hx-trigger="revealed"' in html
    for key in PANELS:
        assert placeholders[key] == panel_url(customer, key)
    assert 'data-testid="service-review"' not in html  # not rendered with the page
    assert "跟进0" not in html
    # "More" on the contacts: all of them, in place.
    more = en(world.a.manager).get(
        _detail(customer), {"contacts": "all"}, headers={**HX, "HX-Target": "customer-contacts"}
    )
    assert more.status_code == 200 and "<html" not in more.content.decode()
    assert more.content.decode().count('data-testid="contact-row"') == 8


def test_panels_come_in_their_order_and_health_may_go_first(world, en):
    customer = customer_with_contact(world.a)
    html = en(world.a.manager).get(_detail(customer)).content.decode()
    keys = list(lazy_panels(html))
    assert keys.index("opportunities") < keys.index("service_review") < keys.index("leads")
    assert keys.index("leads") < keys.index("interactions")

    def health(request, membership, customer):
        return None

    contributions.register_panel(PAGE, health, key="test_first", lazy=True, title="T", order=1)
    try:
        html = en(world.a.manager).get(_detail(customer)).content.decode()
        assert next(iter(lazy_panels(html))) == "test_first"
        # A panel with nothing to show answers nothing: the placeholder goes.
        response = en(world.a.manager).get(panel_url(customer, "test_first"), headers=HX)
        assert response.status_code == 200 and response.content.strip() == b""
    finally:
        contributions._panels[PAGE].pop("test_first")


def test_each_panel_shows_five_rows_then_more_over_twelve_months(world, en):
    customer = customer_with_contact(world.a)
    populate(world.a, customer, 7)
    populate(world.a, customer, 2, start=100, age=timedelta(days=400))  # older than a year
    client = en(world.a.manager)
    rows = {
        "opportunities": 'data-testid="panel-opportunity"',
        "leads": "线索",
        "interactions": 'data-testid="interaction-row"',
    }
    for key, marker in rows.items():
        url = panel_url(customer, key)
        html = client.get(url, headers=HX).content.decode()
        assert html.count(marker) == 5, key
        assert 'data-testid="panel-more"' in html, key
        assert 'data-testid="period-all"' in html, key
        more = client.get(url, {"more": "1"}, headers=HX).content.decode()
        assert 'data-testid="panel-more"' not in more, key
        every = client.get(url, {"limit": "50", "months": "all"}, headers=HX).content.decode()
        if key == "opportunities":  # open ones are shown whatever their age
            assert more.count(marker) == every.count(marker) == 9, key
        else:
            assert more.count(marker) == 7, key
            assert every.count(marker) == 9, key
    # The timeline: the last 12 months by default, every entry with months=all.
    timeline = client.get(panel_url(customer, "timeline"), headers=HX)
    recent = timeline.context["timeline"].paginator.count
    every = client.get(panel_url(customer, "timeline"), {"months": "all"}, headers=HX)
    assert every.context["timeline"].paginator.count > recent
    # The service review card keeps its own window (5 tickets of 180 days).
    html = client.get(panel_url(customer, "service_review"), headers=HX).content.decode()
    assert html.count('data-testid="review-ticket"') == 5
    # Bad parameters are read as the defaults, never a 500.
    for bad in ({"limit": "x"}, {"months": "-3"}, {"limit": "0"}, {"page": "zz"}):
        assert client.get(panel_url(customer, "interactions"), bad).status_code == 200
        assert client.get(panel_url(customer, "timeline"), bad).status_code == 200


def _queries(client, url, django_assert_max_num_queries, budget=None):
    with django_assert_max_num_queries(budget or 60) as captured:
        response = client.get(url, headers=HX)
    assert response.status_code == 200
    return len(captured)


def test_the_first_render_and_each_panel_keep_a_constant_number_of_queries(
    world, en, django_assert_max_num_queries
):
    customer = customer_with_contact(world.a)
    populate(world.a, customer, 1)
    client = en(world.a.manager)
    urls = {"page": _detail(customer)} | {key: panel_url(customer, key) for key in PANELS}
    for url in urls.values():
        client.get(url, headers=HX)  # warm: sessions, the tenant's settings
    few = {key: _queries(client, url, django_assert_max_num_queries) for key, url in urls.items()}
    populate(world.a, customer, 40, start=10)
    for key, url in urls.items():
        many = _queries(client, url, django_assert_max_num_queries, budget=few[key])
        assert many <= few[key], key
    assert few["page"] <= 25, few  # the first screen: a handful of reads


def test_another_tenants_customer_is_404_on_the_page_and_every_panel(world, en):
    theirs = customer_with_contact(world.b)
    populate(world.b, theirs, 1)
    for who in (world.a.admin, world.a.manager, world.a.rep):
        client = en(who)
        assert client.get(_detail(theirs)).status_code == 404
        for key in PANELS:
            assert client.get(panel_url(theirs, key), headers=HX).status_code == 404, key
            assert client.get(panel_url(theirs, key)).status_code == 404, key


def test_another_reps_customer_and_an_unknown_panel_are_404(world, en):
    customer = customer_with_contact(world.a)
    other = en(make_rep(world.a.tenant, "alpha-rep2"))
    assert other.get(_detail(customer)).status_code == 404
    for key in PANELS:
        assert other.get(panel_url(customer, key), headers=HX).status_code == 404, key
    client = en(world.a.rep)
    for key in ("nope", "customers.views_panels.interactions_panel"):
        assert client.get(f"{_detail(customer)}panels/{key}/", headers=HX).status_code == 404
    assert client.get(panel_url(customer, "timeline"), headers=HX).status_code == 200


def test_a_panel_without_javascript_is_a_page_of_its_own(world, en):
    customer = customer_with_contact(world.a)
    populate(world.a, customer, 2)
    response = en(world.a.rep).get(panel_url(customer, "interactions"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and customer.name in html
    assert html.count('data-testid="interaction-row"') == 2
    # The placeholder links there for a browser without JavaScript.
    page = en(world.a.rep).get(_detail(customer)).content.decode()
    assert f'<a class="d-block small mt-2" href="{panel_url(customer, "interactions")}"' in page


def test_a_service_agent_reads_the_360_without_amounts(world, en):
    customer = customer_with_contact(world.a)
    populate(world.a, customer, 2)
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    client = en(agent)
    response = client.get(_detail(customer))
    assert response.status_code == 200 and not response.context["can_log"]
    html = customer_360(client, customer)
    assert 'data-testid="service-review"' in html
    assert 'data-testid="panel-amount"' not in html and "¥" not in html
