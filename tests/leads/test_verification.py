"""Verification (F16) and the full trail (F20): the owner's one-click verdict through
leads.verification and POST /leads/<id>/verify/, and a lead's timeline holding every kind
of event once it went through intake, tagging, assignment, a touch, an SLA alert, a
reassignment, verification and a follow-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEvent, Role
from crm.tenancy import tenant_context
from customers.models import Contact, Customer, Interaction
from leads.models import (
    InvalidReason,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    Verification,
)
from leads.verification import VerificationError, invalid_reasons, lead_verify
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead, make_channel, make_lead, make_rep

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
# A date a few days ahead, whatever the time zones: the booked visit or the next action.
LATER = timezone.localdate() + timedelta(days=3)
VISIT = {"outcome": "valid_visit", "visit_date": LATER.isoformat()}


@pytest.fixture(autouse=True)
def _english_pages(client, settings):
    """Pages in English (the default is Chinese whatever the browser says)."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def _lead(side, owner=None, **fields):
    fields.setdefault("phone_key", fields.get("phone", "+8613957123481"))
    fields.setdefault("company_key", "宁波恒力液压科技")
    at = timezone.now() - timedelta(hours=2)
    return make_assigned_lead(side.tenant, owner or side.rep, at, **fields)


def _action(name="发送方案"):
    from customers.models import PresetKind
    from customers.services import presets

    return presets(PresetKind.ACTION).get(name=name)


def _more_info(side) -> dict:
    with tenant_context(side.tenant):
        action = _action()
    return {
        "outcome": "valid_more_info",
        "next_action": str(action.public_id),
        "next_action_due": LATER.isoformat(),
    }


def _reason(side, name="空号/停机") -> InvalidReason:
    with tenant_context(side.tenant):
        return invalid_reasons().get(name=name)


def _fresh(side, lead) -> Lead:
    with tenant_context(side.tenant):
        return Lead.objects.select_related("customer", "contact", "invalid_reason").get(pk=lead.pk)


# -- invalid reasons ---------------------------------------------------------------------------


def test_twelve_invalid_reasons_are_created_on_first_use_per_tenant(world):
    with tenant_context(world.a.tenant):
        names = list(invalid_reasons().values_list("name", flat=True))
        assert len(names) == 12
        assert names[0] == "空号/停机" and names[-1] == "其他"
        assert "同行/竞争对手" in names
        InvalidReason.objects.filter(name="无预算").update(is_active=False)
        assert invalid_reasons().count() == 11  # switched off by the admin, not re-created
    with tenant_context(world.b.tenant):
        assert not InvalidReason.objects.exists()


# -- the service ---------------------------------------------------------------------------------


def test_valid_visit_creates_the_customer_and_contact_and_counts_as_the_first_touch(world):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        verified = lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=Verification.VALID_VISIT,
            visit_date=LATER,
        )
    with tenant_context(world.a.tenant):
        lead = _fresh(world.a, verified)
        assert lead.status == LeadStatus.VALID
        assert lead.verification == Verification.VALID_VISIT
        assert lead.verified_by == world.a.rep and lead.verified_at is not None
        assert lead.invalid_reason is None
        assert lead.customer.name == "宁波恒力液压科技有限公司"
        assert lead.customer.owner == world.a.rep
        assert lead.contact.customer == lead.customer
        assert lead.contact.phone_key == "+8613957123481"
        assert lead.touch_count == 1
        assert lead.first_touch_at == lead.verified_at
        assert lead.first_touch_late is False
        event = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.VERIFIED)
        assert event.actor == world.a.rep.user
        assert event.data["outcome"] == "valid_visit"
        assert event.data["customer"] == str(lead.customer.public_id)
        assert event.data["customer_created"] is True
        assert AuditEvent.objects.filter(action="lead.verified").count() == 1


def test_valid_lead_with_a_known_phone_joins_that_contacts_customer(world):
    with tenant_context(world.a.tenant):
        customer = Customer.objects.create(tenant=world.a.tenant, name="老客户", name_key="老客户")
        contact = Contact.objects.create(
            tenant=world.a.tenant,
            customer=customer,
            phone="+8613957123481",
            phone_key="+8613957123481",
        )
    lead = _lead(world.a, company="完全不同的名字有限公司", company_key="完全不同的名字")
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=Verification.VALID_MORE_INFO,
            next_action=_action(),
            next_action_due=LATER,
        )
        assert Customer.objects.count() == 1
        event = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.VERIFIED)
        assert event.data["customer_created"] is False
    lead = _fresh(world.a, lead)
    assert (lead.customer, lead.contact) == (customer, contact)
    assert lead.status == LeadStatus.VALID


def test_valid_lead_with_a_known_company_gets_a_new_contact_there(world):
    with tenant_context(world.a.tenant):
        customer = Customer.objects.create(
            tenant=world.a.tenant, name="宁波恒力液压科技有限公司", name_key="宁波恒力液压科技"
        )
    lead = _lead(world.a, company="宁波恒力液压科技（有限公司）", phone="+8613900001111")
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=Verification.VALID_VISIT,
            visit_date=LATER,
        )
        assert Customer.objects.count() == 1
    with tenant_context(world.a.tenant):
        lead = _fresh(world.a, lead)
        assert lead.customer == customer
        assert lead.contact.phone_key == "+8613900001111"
        assert lead.contact.customer == customer
        assert customer.contacts.count() == 1


@pytest.mark.parametrize("outcome", [Verification.INVALID_CONTACT, Verification.INVALID_NOT_TARGET])
def test_an_invalid_verdict_keeps_its_reason_and_makes_no_customer(world, outcome):
    lead = _lead(world.a)
    reason = _reason(world.a, "同行/竞争对手")
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=outcome,
            invalid_reason=reason,
        )
        assert not Customer.objects.exists()
        event = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.VERIFIED)
        assert event.data["reason"] == "同行/竞争对手"
    lead = _fresh(world.a, lead)
    assert lead.status == LeadStatus.INVALID
    assert lead.verification == outcome
    assert lead.invalid_reason == reason
    assert lead.customer is None


def _unchanged(side, lead):
    fresh = _fresh(side, lead)
    assert fresh.verification == ""
    assert fresh.status == LeadStatus.ASSIGNED
    assert fresh.touch_count == 0
    with tenant_context(side.tenant):
        assert not LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.VERIFIED).exists()
        assert not Customer.objects.exists()


def test_an_invalid_verdict_without_a_reason_is_refused(world):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValidationError) as caught:
            lead_verify(
                tenant=lead.tenant,
                acting_member=world.a.rep,
                lead=lead,
                outcome=Verification.INVALID_CONTACT,
            )
        assert set(caught.value.message_dict) == {"invalid_reason"}
        with pytest.raises(ValidationError) as caught:
            lead_verify(tenant=lead.tenant, acting_member=world.a.rep, lead=lead, outcome="maybe")
        assert set(caught.value.message_dict) == {"outcome"}
    _unchanged(world.a, lead)


def test_a_valid_verdict_without_its_next_step_is_refused(world):
    lead = _lead(world.a)
    yesterday = LATER - timedelta(days=5)
    with tenant_context(world.a.tenant):
        cases = [
            ({"outcome": Verification.VALID_VISIT}, {"visit_date"}),
            ({"outcome": Verification.VALID_VISIT, "visit_date": yesterday}, {"visit_date"}),
            ({"outcome": Verification.VALID_MORE_INFO}, {"next_action", "next_action_due"}),
            (
                {"outcome": Verification.VALID_MORE_INFO, "next_action_due": LATER},
                {"next_action"},
            ),
            (
                {
                    "outcome": Verification.VALID_MORE_INFO,
                    "next_action": _action(),
                    "next_action_due": yesterday,
                },
                {"next_action_due"},
            ),
        ]
        for arguments, fields in cases:
            with pytest.raises(ValidationError) as caught:
                lead_verify(tenant=lead.tenant, acting_member=world.a.rep, lead=lead, **arguments)
            assert set(caught.value.message_dict) == fields, arguments
    _unchanged(world.a, lead)
    with tenant_context(world.a.tenant):
        assert not Interaction.objects.exists()


def test_a_valid_verdict_sets_the_next_step_and_says_it_on_the_timeline(world, english):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=Verification.VALID_MORE_INFO,
            next_action=_action("发送报价"),
            next_action_due=LATER,
        )
        step = Interaction.objects.get()
        assert (step.kind, step.by, step.next_action.name, step.next_action_due) == (
            "verification",
            world.a.rep,
            "发送报价",
            LATER,
        )
        assert step.next_done_at is None
        lead = _fresh(world.a, lead)
        assert (step.lead, step.customer, step.contact) == (lead, lead.customer, lead.contact)
        event = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.VERIFIED)
        assert f"before {LATER.isoformat()}: 发送报价" in str(event.text)
        # Not a follow-up of its own: none on the timeline, and the 72 h report's
        # "followed up" does not count it.
        assert not LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.FOLLOW_UP).exists()
        from leads.reports.quality import followed_up_q

        assert not Lead.objects.filter(followed_up_q(), pk=lead.pk).exists()


def test_another_tenants_reason_is_refused(world):
    foreign = _reason(world.b)
    lead = _lead(world.a)
    with tenant_context(world.a.tenant), pytest.raises(ValidationError):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=Verification.INVALID_CONTACT,
            invalid_reason=foreign,
        )
    _unchanged(world.a, lead)


def test_only_the_owner_verifies(world):
    other = make_rep(world.a.tenant, "alpha-rep2")
    lead = _lead(world.a)
    for who in (other, world.a.manager, world.a.admin):
        with tenant_context(world.a.tenant), pytest.raises(VerificationError) as caught:
            lead_verify(
                tenant=lead.tenant,
                acting_member=who,
                lead=lead,
                outcome=Verification.VALID_VISIT,
                visit_date=LATER,
            )
        assert caught.value.status == 403
    _unchanged(world.a, lead)


def test_a_lead_is_verified_once(world):
    lead = _lead(world.a)
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome=Verification.VALID_VISIT,
            visit_date=LATER,
        )
        with pytest.raises(VerificationError) as caught:
            lead_verify(
                tenant=lead.tenant,
                acting_member=world.a.rep,
                lead=lead,
                outcome=Verification.INVALID_CONTACT,
                invalid_reason=invalid_reasons().first(),
            )
        assert caught.value.status == 409
        assert LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.VERIFIED).count() == 1
    lead = _fresh(world.a, lead)
    assert lead.verification == Verification.VALID_VISIT
    assert lead.touch_count == 1


# -- over HTTP -----------------------------------------------------------------------------------


def _verify_url(lead):
    return reverse("leads:verify", args=[lead.public_id])


def test_the_owner_verifies_with_one_click(world, login):
    lead = _lead(world.a)
    client = login(world.a.rep)
    response = client.post(_verify_url(lead), VISIT)
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:detail", args=[lead.public_id])
    assert _fresh(world.a, lead).status == LeadStatus.VALID


def test_htmx_gets_the_verification_card_and_the_change_event(world, login, english):
    lead = _lead(world.a)
    reason = _reason(world.a, "号码错误")
    client = login(world.a.rep)
    response = client.post(
        _verify_url(lead), {"outcome": "invalid_contact", "invalid_reason": reason.pk}, headers=HX
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "leadChanged"
    html = response.content.decode()
    assert 'id="verify-card"' in html and "<html" not in html
    assert "Invalid · wrong contact details" in html and "号码错误" in html
    assert _fresh(world.a, lead).invalid_reason == reason


def test_invalid_without_a_reason_is_a_422_with_the_message(world, login, english):
    lead = _lead(world.a)
    client = login(world.a.rep)
    response = client.post(_verify_url(lead), {"outcome": "invalid_not_target"}, headers=HX)
    assert response.status_code == 422
    assert "An invalid verdict needs a reason" in response.content.decode()
    plain = client.post(_verify_url(lead), {"outcome": "invalid_not_target", "invalid_reason": "x"})
    assert plain.status_code == 422
    assert "Choose a reason from the list." in plain.content.decode()
    _unchanged(world.a, lead)


def test_someone_elses_lead_is_404_a_managers_403_and_a_verified_one_409(world, login, english):
    other = make_rep(world.a.tenant, "alpha-rep2")
    lead = _lead(world.a)
    # Another rep does not read the lead: 404, as its page answers; a manager reads it: 403.
    assert login(other).post(_verify_url(lead), VISIT, headers=HX).status_code == 404
    assert login(other).post(_verify_url(lead), VISIT).status_code == 404
    assert login(other).get(reverse("leads:detail", args=[lead.public_id])).status_code == 404
    response = login(world.a.manager).post(_verify_url(lead), VISIT, headers=HX)
    assert response.status_code == 403
    assert "Only the lead&#x27;s owner can verify it." in response.content.decode()
    assert login(world.a.manager).post(_verify_url(lead), VISIT).status_code == 403
    _unchanged(world.a, lead)

    client = login(world.a.rep)
    assert client.post(_verify_url(lead), VISIT).status_code == 302
    again = client.post(_verify_url(lead), _more_info(world.a), headers=HX)
    assert again.status_code == 409
    assert "already verified" in again.content.decode()
    plain = client.post(_verify_url(lead), _more_info(world.a))
    assert plain.status_code == 409
    assert _fresh(world.a, lead).verification == "valid_visit"


def test_another_tenants_lead_is_not_found(world, login):
    lead = _lead(world.b)
    response = login(world.a.rep).post(_verify_url(lead), VISIT)
    assert response.status_code == 404


def test_the_lead_page_shows_the_four_buttons_to_the_owner_only(world, login, english):
    lead = _lead(world.a)
    url = reverse("leads:detail", args=[lead.public_id])
    html = login(world.a.rep).get(url).content.decode()
    for outcome in Verification:
        assert f'data-testid="verify-{outcome.value}"' in html
        assert str(outcome.label) in html
    assert html.count('name="invalid_reason"') == 2
    assert html.count("<option value=") >= 24  # 12 reasons in each of the two selects
    assert 'data-testid="follow-up-form"' in html

    manager_html = login(world.a.manager).get(url).content.decode()
    assert 'data-testid="verify-valid_visit"' not in manager_html
    assert "Not verified yet." in manager_html
    assert 'data-testid="follow-up-form"' not in manager_html

    login(world.a.rep).post(_verify_url(lead), VISIT)
    html = login(world.a.rep).get(url).content.decode()
    assert 'data-testid="verify-valid_visit"' not in html
    assert "Valid · visit booked" in html
    lead = _fresh(world.a, lead)
    assert reverse("customers:detail", args=[lead.customer.public_id]) in html


# -- the full trail (F20) ----------------------------------------------------------------------


def test_the_timeline_holds_every_kind_of_event(world, login, english):
    from customers.models import PresetKind
    from customers.services import presets, tenant_today
    from leads.assignment.dispatch import dispatch, dispatch_due, lead_reassign
    from leads.assignment.sla import sla_sweep
    from leads.assignment.zones import lead_record_touch
    from leads.followups_services import lead_follow_up
    from leads.intake.services import (
        inbound_event_process,
        inbound_event_receive,
        lead_record_registry_result,
    )
    from leads.models import EventSource, RepProfile, TaggingRule
    from tests.leads.factories import make_tag

    tenant = world.a.tenant
    rep, manager = world.a.rep, world.a.manager
    rep2 = make_rep(tenant, "alpha-rep2", is_available=False)
    channel = make_channel(tenant)
    tag = make_tag(tenant, "急需")
    # An earlier lead of the same company and contact (→ revisit; the placeholder phone
    # below matches nobody), nobody to hand it to (→ wait, pool).
    make_lead(
        tenant,
        channel=channel,
        phone="+8613957121688",
        phone_key="+8613957121688",
        company_key="宁波恒力液压科技",
        contact_key="王工",
    )
    with tenant_context(tenant):
        TaggingRule.objects.create(tenant=tenant, tag=tag, keywords="急需")
        RepProfile.objects.create(tenant=tenant, membership=rep, is_available=False)
        event, _created = inbound_event_receive(
            channel=channel,
            raw_body='{"phone": "13800000000"}',
            source=EventSource.WEBHOOK,
            payload={
                "phone": "13800000000",  # a placeholder number: suspect
                "company": "宁波恒力液压科技有限公司",
                "contact_name": "王工",
                "message": "急需一台探伤设备",
            },
            queue=False,
        )
        lead = inbound_event_process(event_id=event.pk).lead
        t0 = timezone.now()
        dispatch_due(t0 + timedelta(minutes=11))  # still nobody: pooled
        lead_record_registry_result(lead=lead, status="verified", detail="宁波恒力 · 存续")
        RepProfile.objects.filter(membership=rep).update(is_available=True)
        lead = Lead.objects.get(pk=lead.pk)
        dispatch(lead, now=t0 + timedelta(minutes=20))
        assert lead.owner == rep
        lead_record_touch(
            tenant=tenant,
            acting_member=rep,
            lead=lead,
            at=t0 + timedelta(minutes=30),
            note="未接通",
        )
        sla_sweep(t0 + timedelta(hours=25))  # not verified in 24 h: the rep is reminded
        lead = Lead.objects.get(pk=lead.pk)
        lead_reassign(
            tenant=tenant,
            acting_member=manager,
            lead=lead,
            to=rep2,
            reason="原负责人休假",
            now=t0 + timedelta(hours=26),
        )
        lead = Lead.objects.get(pk=lead.pk)
        lead_verify(
            tenant=lead.tenant,
            acting_member=rep2,
            lead=lead,
            outcome="valid_visit",
            visit_date=tenant_today(t0) + timedelta(days=3),
            now=t0 + timedelta(hours=27),
        )
        at = t0 + timedelta(hours=28)
        lead_follow_up(
            tenant=tenant,
            acting_member=rep2,
            lead=lead,
            channel="wechat",
            talk_tags=["预算卡点"],
            pains=["设备老化"],
            roles=["decision_maker"],
            note="客户说价格多少",
            next_action=presets(PresetKind.ACTION).get(name="发送报价"),
            next_action_due=tenant_today(at) + timedelta(days=1),
            at=at,
        )
        kinds = set(LeadEvent.objects.filter(lead=lead).values_list("kind", flat=True))
        assert kinds == set(LeadEventKind.values), set(LeadEventKind.values) - kinds
        for entry in LeadEvent.objects.filter(lead=lead):
            assert entry.text, entry.kind
        verified = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.VERIFIED)
        assert verified.actor == rep2.user
        assert "Valid · visit booked" in str(verified.text)
        follow_up = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.FOLLOW_UP)
        assert follow_up.actor == rep2.user
        for part in ("WeChat", "预算卡点", "设备老化", "客户说价格多少", "发送报价", "报价阶段"):
            assert part in str(follow_up.text), part

    # The page shows them all, newest first, each with its actor and time.
    page = login(manager).get(reverse("leads:detail", args=[lead.public_id]))
    html = page.content.decode()
    timeline = page.context["timeline"]
    entries = list(timeline)
    assert {e.kind for e in entries} == set(LeadEventKind.values)
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    for kind in LeadEventKind:
        assert str(kind.label) in html, kind
    assert rep2.user.get_username() in html or rep2.display_name in html
    assert "原负责人休假" in html


def test_a_rep_of_another_role_cannot_reach_the_endpoints(world, login):
    service = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    lead = _lead(world.a)
    client = login(service)
    assert client.post(_verify_url(lead), VISIT).status_code == 403
    assert client.get(reverse("leads:follow_up", args=[lead.public_id])).status_code == 403
