"""Customers and follow-ups (F16–F18) through customers.services on real rows: the lead
→ customer match, working days in the tenant's time zone, keyword suggestions, and the
rules a follow-up must satisfy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.tenancy import tenant_context
from customers import services
from customers.models import Contact, Customer, Interaction, Preset, PresetKind, StatusSuggestion
from leads.followups_services import lead_follow_up
from leads.models import LeadEvent, LeadEventKind
from tests.leads.factories import make_assigned_lead

pytestmark = pytest.mark.django_db

# Thursday 2026-03-05, 23:30 in UTC = Friday 2026-03-06, 07:30 in Asia/Shanghai.
THU_LATE_UTC = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)


def _action(name="电话回访"):
    return services.presets(PresetKind.ACTION).get(name=name)


# -- defaults on first use -------------------------------------------------------------------


def test_presets_are_created_on_first_use_per_tenant(world):
    with tenant_context(world.a.tenant):
        assert not Preset.objects.exists()
        tags = list(services.presets(PresetKind.TALK_TAG).values_list("name", flat=True))
        assert tags[:3] == ["技术疑虑", "预算卡点", "决策链未明"]
        assert Preset.objects.get(kind=PresetKind.TALK_TAG, name="已达成共识").is_agreement
        assert services.presets(PresetKind.PAIN).count() == 6
        assert "发送报价" in services.presets(PresetKind.ACTION).values_list("name", flat=True)
        # A second read creates nothing more; an entry the admin switched off is hidden.
        Preset.objects.filter(name="竞品比较").update(is_active=False)
        assert services.presets(PresetKind.TALK_TAG).count() == 6
        assert Preset.objects.filter(kind=PresetKind.TALK_TAG).count() == 7
    with tenant_context(world.b.tenant):
        assert not Preset.objects.exists()  # the other tenant's lists are its own


def test_unknown_preset_kind_is_refused(world):
    with tenant_context(world.a.tenant), pytest.raises(ValueError):
        services.presets("colour")


# -- working days ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 3, 5), 3, date(2026, 3, 10)),  # Thu → Tue
        (date(2026, 3, 6), 3, date(2026, 3, 11)),  # Fri → Wed
        (date(2026, 3, 7), 1, date(2026, 3, 9)),  # Sat → Mon
        (date(2026, 3, 8), 3, date(2026, 3, 11)),  # Sun → Wed
        (date(2026, 3, 2), 3, date(2026, 3, 5)),  # Mon → Thu
        (date(2026, 3, 2), 0, date(2026, 3, 2)),
    ],
)
def test_add_working_days_skips_weekends(start, n, expected):
    assert services.add_working_days(start, n) == expected


def test_contact_ended_counts_from_today_in_the_tenants_time_zone(world):
    with tenant_context(world.a.tenant):
        # Thursday night in UTC is already Friday in Shanghai: Fri + 3 working days = Wed.
        due, status = services.contact_ended_defaults("客户说要再考虑一下", now=THU_LATE_UTC)
        assert due == date(2026, 3, 11)
        assert status == "异议处理"
    world.a.tenant.timezone = "UTC"
    world.a.tenant.save()
    with tenant_context(world.a.tenant):
        # The same instant is still Thursday in UTC: Thu + 3 working days = Tue.
        due, status = services.contact_ended_defaults("", now=THU_LATE_UTC)
        assert due == date(2026, 3, 10)
        assert status == ""


# -- status suggestions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "status"),
    [
        ("客户说要再考虑", "异议处理"),
        ("问价格多少", "报价阶段"),
        ("请尽快报价", "报价阶段"),
        ("觉得太贵了", "异议处理"),
        ("下周谈合同", "合同谈判"),
        ("想先试用一个月", "方案演示"),
        ("聊了聊天气", ""),
        ("", ""),
    ],
)
def test_keywords_suggest_a_status(world, note, status):
    with tenant_context(world.a.tenant):
        assert services.suggest_status(note) == status


def test_status_rules_are_the_tenants_own(world):
    with tenant_context(world.a.tenant):
        services.status_suggestions()  # the defaults
        StatusSuggestion.objects.filter(keyword="太贵").update(is_active=False)
        StatusSuggestion.objects.create(
            tenant=world.a.tenant, keyword="样机", status="方案演示", position=1
        )
        assert services.suggest_status("太贵") == ""
        assert services.suggest_status("要一台样机") == "方案演示"
    with tenant_context(world.b.tenant):
        assert services.suggest_status("要一台样机") == ""
        assert services.suggest_status("太贵") == "异议处理"


# -- lead → customer ---------------------------------------------------------------------------


def _valid_lead(side, **fields):
    lead = make_assigned_lead(
        side.tenant, side.rep, datetime(2026, 3, 2, 1, 0, tzinfo=UTC), **fields
    )
    lead.phone_key = lead.phone if lead.phone.startswith("+") else ""
    from crm.normalize import company_key

    lead.company_key = company_key(lead.company)
    with tenant_context(side.tenant):
        lead.save(update_fields=["phone_key", "company_key"])
    return lead


def test_a_new_company_becomes_a_new_customer_with_its_contact(world):
    lead = _valid_lead(world.a, company="宁波恒力液压科技有限公司", phone="+8613957123481")
    with tenant_context(world.a.tenant):
        customer, contact, created = services.customer_for_lead(
            tenant=lead.tenant, acting_member=None, lead=lead
        )
        assert created
        assert customer.name == "宁波恒力液压科技有限公司"
        assert customer.name_key == "宁波恒力液压科技"
        assert customer.owner == world.a.rep
        assert customer.source_lead == lead
        assert contact.customer == customer
        assert contact.phone_key == "+8613957123481"
        assert contact.name == "王工"


def test_the_same_phone_finds_the_existing_contact(world):
    first = _valid_lead(world.a, company="宁波恒力液压科技有限公司", phone="+8613957123481")
    # Another company name (a branch, a typo): the phone decides.
    second = _valid_lead(world.a, company="恒力液压（宁波分公司）", phone="+8613957123481")
    with tenant_context(world.a.tenant):
        customer, contact, _created = services.customer_for_lead(
            tenant=first.tenant, acting_member=None, lead=first
        )
        again, same_contact, created = services.customer_for_lead(
            tenant=second.tenant, acting_member=None, lead=second
        )
        assert not created
        assert (again, same_contact) == (customer, contact)
        assert Customer.objects.count() == 1
        assert Contact.objects.count() == 1


def test_a_placeholder_phone_never_joins_two_companies_into_one_customer(world):
    """13800000000 is what people type to get past a form: strangers share it."""
    first = _valid_lead(world.a, company="宁波恒力液压科技有限公司", phone="+8613800000000")
    other = _valid_lead(
        world.a, company="苏州精工阀门有限公司", phone="+8613800000000", contact_name="赵经理"
    )
    with tenant_context(world.a.tenant):
        customer, contact, _created = services.customer_for_lead(
            tenant=first.tenant, acting_member=None, lead=first
        )
        second, second_contact, created = services.customer_for_lead(
            tenant=other.tenant, acting_member=None, lead=other
        )
        assert created
        assert second != customer and second.name == "苏州精工阀门有限公司"
        assert second_contact != contact
        # The number stays on the contact, but finds nobody.
        assert (contact.phone, contact.phone_key) == ("+8613800000000", "")


def test_the_same_normalised_company_finds_the_customer_and_adds_a_contact(world):
    first = _valid_lead(world.a, company="宁波恒力液压科技有限公司", phone="+8613957123481")
    second = _valid_lead(
        world.a,
        company="宁波恒力液压科技（有限公司）",
        phone="+8613987654321",
        contact_name="李经理",
    )
    with tenant_context(world.a.tenant):
        customer, contact, _created = services.customer_for_lead(
            tenant=first.tenant, acting_member=None, lead=first
        )
        again, new_contact, created = services.customer_for_lead(
            tenant=second.tenant, acting_member=None, lead=second
        )
        assert not created
        assert again == customer
        assert new_contact != contact
        assert new_contact.customer == customer
        assert new_contact.name == "李经理"
        assert Customer.objects.count() == 1
        assert Contact.objects.filter(customer=customer).count() == 2


def test_customers_are_matched_only_within_the_tenant(world):
    _valid_lead(world.b, company="宁波恒力液压科技有限公司", phone="+8613957123481")
    lead_b = _valid_lead(world.b, company="宁波恒力液压科技有限公司", phone="+8613957123481")
    with tenant_context(world.b.tenant):
        services.customer_for_lead(tenant=lead_b.tenant, acting_member=None, lead=lead_b)
    lead_a = _valid_lead(world.a, company="宁波恒力液压科技有限公司", phone="+8613957123481")
    with tenant_context(world.a.tenant):
        _customer, _contact, created = services.customer_for_lead(
            tenant=lead_a.tenant, acting_member=None, lead=lead_a
        )
        assert created


# -- follow-ups --------------------------------------------------------------------------------


def _log(side, lead, **overrides):
    """A follow-up through the real services: on a lead (leads' lead_follow_up, which logs
    it with customers' interaction_log), or with `lead` None on a customer."""
    fields = {
        "tenant": side.tenant,
        "acting_member": side.rep,
        "lead": lead,
        "channel": "phone",
        "talk_tags": ["技术疑虑"],
        "pains": ["设备老化"],
        "roles": ["technical"],
        "note": "",
        "next_action": _action(),
        "next_action_due": services.tenant_today() + timedelta(days=2),
    }
    fields.update(overrides)
    if fields["lead"] is None:
        del fields["lead"]
        return services.interaction_log(**fields)
    return lead_follow_up(**fields)


def test_a_follow_up_is_stored_touches_the_lead_and_enters_the_timeline(world):
    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        interaction = _log(world.a, lead, note="问了价格多少", channel="wechat")
        assert interaction.talk_tags == ["技术疑虑"]
        assert interaction.pains == ["设备老化"]
        assert interaction.roles == ["technical"]
        assert interaction.suggested_status == "报价阶段"
        assert not interaction.closes_loop
        assert interaction.next_done_at is None
        lead.refresh_from_db()
        assert lead.touch_count == 1
        assert lead.first_touch_at == interaction.at
        event = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.FOLLOW_UP)
        assert event.actor == world.a.rep.user
        assert event.data["next_action"] == "电话回访"
        assert event.data["channel"] == "wechat"
        assert event.data["talk_tags"] == ["技术疑虑"]
        assert LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.TOUCH).count() == 1


def test_a_follow_up_without_a_next_action_is_a_field_error(world):
    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValidationError) as caught:
            _log(world.a, lead, next_action=None)
        assert set(caught.value.message_dict) == {"next_action"}
        assert not Interaction.objects.exists()
        lead.refresh_from_db()
        assert lead.touch_count == 0


def test_a_next_action_due_in_the_past_is_a_field_error(world):
    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValidationError) as caught:
            # Thursday night UTC is Friday in Shanghai: Thursday is already the past.
            _log(world.a, lead, at=THU_LATE_UTC, next_action_due=date(2026, 3, 5))
        assert set(caught.value.message_dict) == {"next_action_due"}
        # Today (in the tenant's zone) is fine.
        _log(world.a, lead, at=THU_LATE_UTC, next_action_due=date(2026, 3, 6))


def test_unknown_channel_tags_and_roles_are_field_errors(world):
    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValidationError) as caught:
            _log(world.a, lead, channel="fax", talk_tags=["乱写"], pains=["无"], roles=["ceo"])
        assert set(caught.value.message_dict) == {"channel", "talk_tags", "pains", "roles"}


def test_another_tenants_action_is_refused(world):
    with tenant_context(world.b.tenant):
        foreign = _action()
    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValidationError) as caught:
            _log(world.a, lead, next_action=foreign)
        assert set(caught.value.message_dict) == {"next_action"}


def test_the_next_follow_up_closes_the_previous_open_one(world):
    lead = _valid_lead(world.a)
    other_lead = _valid_lead(world.a, company="另一家公司", phone="+8613911112222")
    with tenant_context(world.a.tenant):
        first = _log(world.a, lead)
        elsewhere = _log(world.a, other_lead)
        by_manager = _log(world.a, lead, acting_member=world.a.manager)
        second = _log(world.a, lead)
        first.refresh_from_db()
        elsewhere.refresh_from_db()
        by_manager.refresh_from_db()
        second.refresh_from_db()
        assert first.next_done_at == second.at
        assert elsewhere.next_done_at is None  # another lead
        assert by_manager.next_done_at is None  # another person's open action
        assert second.next_done_at is None


def test_a_follow_up_on_the_customer_closes_the_one_logged_on_its_lead(world):
    from leads.verification import lead_verify

    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        lead = lead_verify(
            tenant=lead.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome="valid_visit",
            visit_date=timezone.localdate() + timedelta(days=3),
        )
        on_lead = _log(world.a, lead)
        assert on_lead.customer == lead.customer
        on_customer = _log(world.a, None, customer=lead.customer)
        on_lead.refresh_from_db()
        assert on_lead.next_done_at == on_customer.at
        assert on_customer.lead is None


@pytest.mark.parametrize(
    ("tags", "note", "closes"),
    [
        (["已达成共识"], "", True),
        (["技术疑虑"], "客户同意下周演示", True),
        (["技术疑虑"], "确认了预算", True),
        (["技术疑虑"], "还要再考虑", False),
    ],
)
def test_an_agreement_closes_a_loop(world, tags, note, closes):
    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant):
        assert _log(world.a, lead, talk_tags=tags, note=note).closes_loop is closes


# -- the write contract: audited, tenant-checked -------------------------------------------------


def test_the_writes_audit_themselves(world):
    from crm.models import AuditEvent
    from leads.verification import lead_verify

    lead = _valid_lead(world.a)
    again = _valid_lead(world.a, phone=lead.phone)  # the same person again
    other = _valid_lead(world.a, phone="+8613911112222", contact_name="李经理")
    with tenant_context(world.a.tenant):
        lead = lead_verify(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome="valid_visit",
            visit_date=timezone.localdate() + timedelta(days=3),
        )
        created = AuditEvent.objects.get(action="customer.created")
        assert created.object_id == str(lead.customer.public_id)
        assert created.actor == world.a.rep.user
        step = AuditEvent.objects.get(action="interaction.scheduled")
        assert step.changes["next_action"] == [None, services.VISIT_ACTION]
        on_customer = _log(world.a, None, customer=lead.customer)
        logged = AuditEvent.objects.get(action="interaction.logged")
        assert logged.object_id == str(on_customer.public_id)
        assert logged.actor == world.a.rep.user
        # A second lead of the same person joins the customer: nothing new to audit.
        services.customer_for_lead(tenant=world.a.tenant, acting_member=None, lead=again)
        assert not AuditEvent.objects.filter(action="customer.updated_from_lead").exists()
        # Another person of the same company: a new contact on it, audited (the system).
        services.customer_for_lead(tenant=world.a.tenant, acting_member=None, lead=other)
        updated = AuditEvent.objects.get(action="customer.updated_from_lead")
        assert updated.actor is None and updated.object_id == str(lead.customer.public_id)


def test_a_write_for_another_tenant_is_a_programming_error(world):
    from crm.services import TenantMismatchError

    lead = _valid_lead(world.a)
    with tenant_context(world.a.tenant), pytest.raises(TenantMismatchError):
        services.customer_for_lead(tenant=world.b.tenant, acting_member=None, lead=lead)
    with tenant_context(world.a.tenant), pytest.raises(TenantMismatchError):
        _log(world.a, lead, acting_member=world.b.rep)
    with tenant_context(world.a.tenant):
        assert not Customer.objects.exists() and not Interaction.objects.exists()
