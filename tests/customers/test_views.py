"""The follow-up form over HTTP (F17, F18) and the customer page (F20): fragments for htmx,
field errors as 422, refusals as 403/409/404, every control labelled and reachable by Tab,
"contact ended", and the customer's paginated timeline within a query budget."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from customers import services
from customers.models import Contact, Customer, Interaction, InteractionKind, PresetKind
from leads.followups_services import lead_follow_up
from leads.models import Lead, LeadEvent, LeadEventKind
from leads.verification import invalid_reasons, lead_verify
from tests.customers.panels import customer_360, panel_url
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead, make_rep

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english_pages(client, settings):
    """Pages in English (the default is Chinese whatever the browser says)."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def _lead(side, owner=None, **fields):
    fields.setdefault("phone_key", "+8613812345678")
    fields.setdefault("company_key", "宁波恒力液压科技")
    return make_assigned_lead(
        side.tenant, owner or side.rep, timezone.now() - timedelta(hours=1), **fields
    )


def _action_id(side, name="发送方案"):
    with tenant_context(side.tenant):
        return str(services.presets(PresetKind.ACTION).get(name=name).public_id)


def _today(side):
    with tenant_context(side.tenant):
        return services.tenant_today()


def _post_data(side, **overrides):
    data = {
        "channel": "phone",
        "talk_tags": ["技术疑虑", "预算卡点"],
        "pains": ["检测效率低"],
        "roles": ["technical", "purchasing"],
        "note": "客户要再考虑",
        "next_action": _action_id(side),
        "next_action_due": (_today(side) + timedelta(days=3)).isoformat(),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _follow_up_url(lead):
    return reverse("leads:follow_up", args=[lead.public_id])


# -- the form ----------------------------------------------------------------------------------


class Controls(HTMLParser):
    """The form's focusable controls, their labels, fieldsets and autofocus."""

    def __init__(self):
        super().__init__()
        self.controls, self.labels, self.legends, self.autofocus = [], set(), 0, []
        self.fieldsets = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("input", "select", "textarea", "button"):
            if a.get("type") == "hidden":
                return
            self.controls.append((tag, a))
            if "autofocus" in a:
                self.autofocus.append(a.get("id"))
        elif tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        elif tag == "legend":
            self.legends += 1
        elif tag == "fieldset":
            self.fieldsets += 1


def _controls(html: str) -> Controls:
    parser = Controls()
    parser.feed(html)
    return parser


def test_get_returns_the_form_fragment_with_every_control_labelled(world, login, english):
    lead = _lead(world.a)
    response = login(world.a.rep).get(_follow_up_url(lead), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    parsed = _controls(html)
    inputs = [a for tag, a in parsed.controls if tag == "input"]
    # 5 channels + 7 talk tags + 6 pains + 6 roles + note + 9 actions (the default library,
    # 上门拜访 included: a booked visit's step) + the date.
    assert len(inputs) == 5 + 7 + 6 + 6 + 1 + 9 + 1
    for attrs in inputs:
        assert attrs.get("id") in parsed.labels, attrs
        assert attrs.get("tabindex") != "-1", attrs  # every control is reachable by Tab
    assert parsed.fieldsets == parsed.legends == 5  # channel, tags, pains, roles, action
    assert {a.get("type") for a in inputs} == {"radio", "checkbox", "text", "date"}
    # The first channel radio takes the focus; the submit button makes Enter submit.
    key = "fu-" + lead.public_id.hex
    assert parsed.autofocus[0] == f"{key}-channel_0"
    assert any(tag == "button" and a.get("type") == "submit" for tag, a in parsed.controls)
    # Nothing needs typing: the channel and the date are filled in.
    assert 'value="phone"\n' in html or 'value="phone" ' in html or 'value="phone"' in html
    assert "checked" in html
    assert f'name="next_action_due" id="{key}-next_action_due" value="' in html


def test_a_follow_up_is_saved_in_place(world, login, english):
    lead = _lead(world.a)
    response = login(world.a.rep).post(_follow_up_url(lead), _post_data(world.a), headers=HX)
    assert response.status_code == 200, response.content.decode()
    assert response["HX-Trigger"] == "leadChanged"
    html = response.content.decode()
    assert 'data-testid="follow-up-saved"' in html
    assert "发送方案" in html
    assert "异议处理" in html  # suggested by 再考虑
    with tenant_context(world.a.tenant):
        interaction = Interaction.objects.get()
        assert interaction.lead_id == lead.pk
        assert interaction.by == world.a.rep
        assert interaction.talk_tags == ["技术疑虑", "预算卡点"]
        assert interaction.pains == ["检测效率低"]
        assert interaction.roles == ["technical", "purchasing"]
        assert interaction.next_action.name == "发送方案"
        assert interaction.suggested_status == "异议处理"
        assert LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.FOLLOW_UP).count() == 1
        assert Lead.objects.get(pk=lead.pk).touch_count == 1


def test_a_plain_post_redirects_to_the_lead(world, login):
    lead = _lead(world.a)
    response = login(world.a.rep).post(_follow_up_url(lead), _post_data(world.a))
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:detail", args=[lead.public_id])


def test_a_follow_up_without_a_next_action_is_a_field_error(world, login, english):
    lead = _lead(world.a)
    client = login(world.a.rep)
    response = client.post(_follow_up_url(lead), _post_data(world.a, next_action=None), headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-next_action"' in html
    assert "Choose the next action." in html
    # The form comes back as filled in, the focus on the first control in error.
    assert 'value="客户要再考虑"' in html
    key = "fu-" + lead.public_id.hex
    assert _controls(html).autofocus[0] == f"{key}-next_action_0"
    plain = client.post(_follow_up_url(lead), _post_data(world.a, next_action=None))
    assert plain.status_code == 422
    assert "Choose the next action." in plain.content.decode()
    with tenant_context(world.a.tenant):
        assert not Interaction.objects.exists()


def test_a_next_action_due_in_the_past_is_a_field_error(world, login, english):
    lead = _lead(world.a)
    yesterday = (_today(world.a) - timedelta(days=1)).isoformat()
    response = login(world.a.rep).post(
        _follow_up_url(lead), _post_data(world.a, next_action_due=yesterday), headers=HX
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-next_action_due"' in html
    assert "The next action cannot be due in the past." in html
    assert "autofocus" in html.split('name="next_action_due"')[1].split(">")[0]
    with tenant_context(world.a.tenant):
        assert not Interaction.objects.exists()


def test_only_the_owner_logs_follow_ups_on_a_lead(world, login):
    lead = _lead(world.a)
    other = make_rep(world.a.tenant, "alpha-rep2")
    # Another rep does not read the lead: 404, as its page answers; a manager reads it: 403.
    assert login(other).post(_follow_up_url(lead), _post_data(world.a)).status_code == 404
    assert login(other).get(reverse("leads:detail", args=[lead.public_id])).status_code == 404
    assert login(world.a.manager).get(_follow_up_url(lead)).status_code == 403
    assert login(world.a.manager).post(_follow_up_url(lead), _post_data(world.a)).status_code == 403
    foreign = _lead(world.b)
    assert login(world.a.rep).get(_follow_up_url(foreign)).status_code == 404
    with tenant_context(world.a.tenant):
        assert not Interaction.objects.exists()


def test_an_invalid_lead_takes_no_follow_ups(world, login):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome="invalid_contact",
            invalid_reason=invalid_reasons()[0],
        )
    client = login(world.a.rep)
    assert client.post(_follow_up_url(lead), _post_data(world.a), headers=HX).status_code == 409
    assert client.post(_follow_up_url(lead), _post_data(world.a)).status_code == 409


# -- contact ended (F18) -----------------------------------------------------------------------


def test_contact_ended_fills_three_working_days_and_suggests_a_status(world, login, english):
    lead = _lead(world.a)
    key = "fu-" + lead.public_id.hex
    client = login(world.a.rep)
    url = reverse("customers:contact_ended")
    response = client.get(url, {"key": key, "note": "他问价格多少"}, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    due = services.add_working_days(_today(world.a), 3)
    assert f'value="{due.isoformat()}"' in html
    assert f'id="{key}-next_action_due"' in html
    assert f'id="{key}-due"' in html
    assert "报价阶段" in html
    none = client.get(url, {"key": key, "note": "聊了聊"}, headers=HX).content.decode()
    assert "No status suggested by the note." in none
    assert client.get(url, {"key": "<script>", "note": ""}).status_code == 404


def test_the_saved_follow_up_keeps_the_suggested_status(world, login):
    lead = _lead(world.a)
    login(world.a.rep).post(_follow_up_url(lead), _post_data(world.a, note="说太贵了"), headers=HX)
    with tenant_context(world.a.tenant):
        assert Interaction.objects.get().suggested_status == "异议处理"


# -- the customer page -------------------------------------------------------------------------


def _verified_customer(side):
    lead = _lead(side)
    with tenant_context(side.tenant):
        lead = lead_verify(
            tenant=lead.tenant,
            acting_member=side.rep,
            lead=lead,
            outcome="valid_visit",
            visit_date=timezone.localdate() + timedelta(days=3),
        )
        return Customer.objects.get(pk=lead.customer_id), lead


def test_the_customer_page_for_its_owner_and_the_managers(world, login, english):
    customer, lead = _verified_customer(world.a)
    url = reverse("customers:detail", args=[customer.public_id])
    for who in (world.a.rep, world.a.manager, world.a.admin):
        response = login(who).get(url)
        assert response.status_code == 200, who
        html = customer_360(login(who), customer)
        assert customer.name in html
        assert "C: regular account" in html
        assert world.a.rep.display_name in html
        assert "王工" in html  # the contact
        assert reverse("leads:detail", args=[lead.public_id]) in html
        assert "Verified" in html  # the lead's trail
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    assert login(marketing).get(url).status_code == 200
    # Another rep does not see it; a service agent reads it, without the follow-up form
    # (tests/customers/test_service_home.py).
    assert login(make_rep(world.a.tenant, "alpha-rep2")).get(url).status_code == 404
    service = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    response = login(service).get(url)
    assert response.status_code == 200 and not response.context["can_log"]


def test_another_tenants_customer_is_not_found(world, login):
    customer, _lead_b = _verified_customer(world.b)
    for who in (world.a.admin, world.a.manager, world.a.rep):
        client = login(who)
        assert client.get(reverse("customers:detail", args=[customer.public_id])).status_code == 404
        follow_up = reverse("customers:follow_up", args=[customer.public_id])
        assert client.post(follow_up, _post_data(world.a)).status_code == 404


def test_follow_ups_on_a_customer_are_for_its_owner_and_the_writers(world, login):
    """Reading a customer is not writing on it: a member who reads it but may not log on
    it gets 404 from the form, as for a customer they cannot read (customers.access)."""
    customer, _lead_a = _verified_customer(world.a)
    url = reverse("customers:follow_up", args=[customer.public_id])
    for who in (world.a.rep, world.a.manager, world.a.admin):
        assert login(who).get(url, headers=HX).status_code == 200, who
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    page = login(marketing).get(reverse("customers:detail", args=[customer.public_id]))
    assert page.status_code == 200 and not page.context["can_log"]
    assert login(marketing).get(url).status_code == 404
    assert login(marketing).post(url, _post_data(world.a)).status_code == 404
    service = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    assert login(service).get(url).status_code == 403  # not of the sales team
    with tenant_context(world.a.tenant):
        assert not Interaction.objects.filter(kind=InteractionKind.FOLLOW_UP).exists()


def test_access_lead_for_writing_is_its_owner_or_an_assigner(world):
    from django.http import Http404

    from leads.access import access_lead

    lead = _lead(world.a)
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    other = make_rep(world.a.tenant, "alpha-rep2")
    with tenant_context(world.a.tenant):
        for who in (world.a.rep, world.a.manager, world.a.admin):
            assert access_lead(who, lead.public_id, write=True) == lead
        assert access_lead(marketing, lead.public_id) == lead  # reads it
        for who, write in ((marketing, True), (other, False), (other, True)):
            with pytest.raises(Http404):
                access_lead(who, lead.public_id, write=write)


def test_a_follow_up_on_the_customer_page(world, login, english):
    customer, _lead_a = _verified_customer(world.a)
    url = reverse("customers:follow_up", args=[customer.public_id])
    client = login(world.a.rep)
    form = client.get(url, headers=HX)
    assert form.status_code == 200
    assert f'id="fc-{customer.public_id.hex}"' in form.content.decode()
    response = client.post(url, _post_data(world.a, note="确认下周拜访"), headers=HX)
    assert response.status_code == 200
    with tenant_context(world.a.tenant):
        interaction = Interaction.objects.get(kind=InteractionKind.FOLLOW_UP)
        assert interaction.customer == customer and interaction.lead is None
        assert interaction.closes_loop
        # The verdict's next step (the booked visit) is closed by this follow-up.
        step = Interaction.objects.get(kind=InteractionKind.VERIFICATION)
        assert step.next_done_at == interaction.at
    html = customer_360(client, customer)
    assert "确认下周拜访" in html
    timeline = client.get(panel_url(customer, "timeline"), headers=HX)
    kinds = [e.kind for e in timeline.context["timeline"]]
    assert kinds[0] == LeadEventKind.FOLLOW_UP  # the newest first
    assert LeadEventKind.VERIFIED in kinds
    # A plain post with an error gets the page back with the error under the field.
    page = client.post(url, _post_data(world.a, next_action=None))
    assert page.status_code == 422
    assert 'data-testid="customer-name"' in page.content.decode()
    assert "Choose the next action." in page.content.decode()
    # Another rep may not log here.
    assert (
        login(make_rep(world.a.tenant, "alpha-rep2")).post(url, _post_data(world.a)).status_code
        == 404
    )


def test_the_customer_timeline_is_paginated_within_a_query_budget(
    world, login, django_assert_max_num_queries
):
    customer, lead = _verified_customer(world.a)
    start = timezone.now()
    with tenant_context(world.a.tenant):
        action = services.presets(PresetKind.ACTION).first()
        due = services.tenant_today() + timedelta(days=1)
        for i in range(15):
            lead_follow_up(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                lead=lead,
                channel="phone",
                next_action=action,
                next_action_due=due,
                at=start + timedelta(minutes=i),
                note=f"第{i}次",
            )
            services.interaction_log(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                customer=customer,
                channel="visit",
                next_action=action,
                next_action_due=due,
                at=start + timedelta(minutes=i, seconds=30),
            )
            Contact.objects.create(tenant=world.a.tenant, customer=customer, name=f"联系人{i}")
        total = LeadEvent.objects.filter(lead=lead).count() + 15
    client = login(world.a.manager)
    url = panel_url(customer, "timeline")
    with django_assert_max_num_queries(30):
        first = client.get(url, headers=HX)
    timeline = first.context["timeline"]
    assert timeline.paginator.count == total
    assert len(timeline) == 20
    ats = [e.at for e in timeline]
    assert ats == sorted(ats, reverse=True)
    with django_assert_max_num_queries(30):
        last = client.get(url, {"page": timeline.paginator.num_pages}, headers=HX)
    assert last.status_code == 200
    assert "<html" not in last.content.decode()
    seen = set()
    for number in timeline.paginator.page_range:
        for event in client.get(url, {"page": number}, headers=HX).context["timeline"]:
            seen.add((event.kind, event.at))
    assert len(seen) >= total - 1  # every entry on some page (touch and follow-up share a time)


def test_the_lead_page_refreshes_after_a_follow_up(world, login):
    lead = _lead(world.a)
    client = login(world.a.rep)
    url = reverse("leads:detail", args=[lead.public_id])
    html = client.get(url).content.decode()
    assert 'hx-trigger="leadChanged from:body"' in html
    client.post(_follow_up_url(lead), _post_data(world.a), headers=HX)
    card = client.get(url, headers={**HX, "HX-Target": "touch-card"})
    assert card.status_code == 200
    body = card.content.decode()
    assert 'id="touch-card"' in body and "<html" not in body
    assert 'data-testid="touch-count">1<' in body
    timeline = client.get(url + "?page=1", headers={**HX, "HX-Target": "timeline"}).content.decode()
    assert "客户要再考虑" in timeline


def test_admin_edits_the_pick_lists(world, login):
    with tenant_context(world.a.tenant):
        services.presets(PresetKind.TALK_TAG)
        services.status_suggestions()
        invalid_reasons()
    client = login(world.a.admin)
    for name in (
        "customers_preset",
        "customers_statussuggestion",
        "customers_customer",
        "customers_contact",
        "leads_invalidreason",
    ):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
    assert "已达成共识" in client.get(reverse("admin:customers_preset_changelist")).content.decode()
    customer, _lead_a = _verified_customer(world.a)
    change = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert change.status_code == 200
    assert "王工" in change.content.decode()  # the contacts inline
    response = client.post(
        reverse("admin:customers_statussuggestion_add"),
        {"keyword": "样机", "status": "方案演示", "position": 5, "is_active": "on"},
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        assert services.suggest_status("想要一台样机") == "方案演示"
    manager = login(world.a.manager)
    assert manager.get(reverse("admin:customers_preset_changelist")).status_code == 403
