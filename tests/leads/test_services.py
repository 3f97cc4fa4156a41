"""The intake pipeline: an inbox event becomes a validated, de-duplicated, tagged lead."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from crm.tenancy import tenant_context
from leads.intake.services import (
    inbound_event_process,
    inbound_event_receive,
    inbound_event_reprocess,
)
from leads.models import (
    EventStatus,
    InboundEvent,
    Lead,
    LeadEvent,
    LeadStatus,
    MappingPreset,
    RegistryStatus,
    TaggingRule,
)
from leads.tasks import redrive_inbound_events
from tests.conftest import platform_db
from tests.leads.factories import make_channel, make_tag

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def intake(tenant, channel, payload, **kw):
    """Receive and process one payload the way the webhook + worker do."""
    with tenant_context(tenant):
        event, _ = inbound_event_receive(
            channel=channel, raw_body=repr(payload), source="webhook", payload=payload, **kw
        )
        inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        return event


def lead_of(tenant, event):
    with tenant_context(tenant):
        return (
            Lead.objects.prefetch_related("tags").select_related("revisit_of").get(pk=event.lead_id)
        )


@pytest.fixture
def tenant(world):
    return world.a.tenant


@pytest.fixture
def channel(tenant):
    return make_channel(tenant, default_grade="A")


def test_it_creates_a_normalised_lead(tenant, channel):
    event = intake(
        tenant,
        channel,
        {
            "company": "宁波恒力液压科技有限公司",
            "contact_name": "王工",
            "phone": "139 5712 1688",
            "industry": "制造业",
            "message": "需要报价",
            "utm_campaign": "expo",
        },
    )
    assert event.status == EventStatus.PROCESSED and event.error == ""
    lead = lead_of(tenant, event)
    assert lead.phone == "+8613957121688"
    assert (lead.province, lead.city) == ("浙江省", "杭州市")  # from the number
    assert lead.industry == "manufacturing"
    assert lead.source_grade == "A"
    # Assigned in the same task (the tenant has one rep): F11's "within seconds".
    assert lead.status == LeadStatus.ASSIGNED and lead.assigned_at is not None
    assert lead.utm == {"utm_campaign": "expo"}
    assert lead.is_suspect is False
    with tenant_context(tenant):
        assert list(lead.events.values_list("kind", flat=True)) == ["assigned", "intake"]


def test_a_landline_and_a_400_number_are_accepted(tenant, channel):
    lead = lead_of(tenant, intake(tenant, channel, {"phone": "0755-26543210"}))
    assert lead.phone == "+8675526543210" and lead.city == "深圳市"
    lead = lead_of(tenant, intake(tenant, channel, {"phone": "400-810-8888"}))
    assert lead.phone == "+864008108888" and not lead.is_suspect


def test_form_region_wins_over_the_phones(tenant, channel):
    lead = lead_of(
        tenant,
        intake(tenant, channel, {"phone": "13957121688", "province": "浙江省", "city": "宁波市"}),
    )
    assert (lead.province, lead.city) == ("浙江省", "宁波市")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"phone": "12345"}, "not recognised"),
        ({"phone": "13800000000"}, "Placeholder"),
        ({"email": "wang@", "external_id": "x"}, "malformed"),
        ({"phone": "13857160321", "company": "测试公司"}, "test entry"),
    ],
)
def test_suspect_leads_are_flagged_not_dropped(tenant, channel, payload, reason):
    event = intake(tenant, channel, payload)
    assert event.status == EventStatus.PROCESSED
    lead = lead_of(tenant, event)
    assert lead.is_suspect
    assert any(reason in r for r in lead.suspect_reason_texts()), lead.suspect_reasons
    with tenant_context(tenant):
        assert lead.events.filter(kind="suspect").exists()


def test_an_event_with_no_way_to_reach_anyone_fails_with_the_reason(tenant, channel):
    event = intake(tenant, channel, {"company": "甲公司", "message": "hi"})
    assert event.status == EventStatus.FAILED
    assert "phone" in event.error and event.lead is None


def test_a_broken_mapping_fails_the_event_and_reprocessing_recovers_it(
    tenant, channel, django_capture_on_commit_callbacks
):
    channel.mapping = [{"field": "phone", "path": "tel", "map": "oops"}]
    with tenant_context(tenant):
        channel.save()
    event = intake(tenant, channel, {"tel": "13957121688"})
    assert event.status == EventStatus.FAILED
    assert "map" in event.error
    channel.mapping = [{"field": "phone", "path": "tel"}]
    with tenant_context(tenant):
        channel.save()
        with django_capture_on_commit_callbacks() as queued:
            assert inbound_event_reprocess(event=event)
        assert len(queued) == 1
        assert not inbound_event_reprocess(event=event)  # not failed any more
        inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert lead_of(tenant, event).phone == "+8613957121688"


def test_processing_twice_makes_one_lead(tenant, channel):
    event = intake(tenant, channel, {"phone": "13957121688"})
    with tenant_context(tenant):
        assert inbound_event_process(event_id=event.pk) is None
        assert Lead.objects.count() == 1


def test_same_phone_within_30_days_is_a_revisit_routed_to_the_first_owner(tenant, channel, world):
    first = lead_of(tenant, intake(tenant, channel, {"phone": "13957121688", "company": "甲"}))
    with tenant_context(tenant):
        Lead.objects.filter(pk=first.pk).update(owner=world.a.rep, status=LeadStatus.ASSIGNED)
    second = lead_of(
        tenant, intake(tenant, channel, {"phone": "+86 139-5712-1688", "company": "乙"})
    )
    assert second.revisit_of == first
    with tenant_context(tenant):
        assert second.owner == world.a.rep
    assert second.status == LeadStatus.ASSIGNED
    third = lead_of(tenant, intake(tenant, channel, {"phone": "13957121688", "message": "again"}))
    assert third.revisit_of == first  # linked to the original, not to the revisit
    with tenant_context(tenant):
        assert second.events.filter(kind="revisit", data__original=str(first.public_id)).exists()


def test_same_company_and_contact_is_a_revisit(tenant, channel):
    first = lead_of(
        tenant,
        intake(
            tenant,
            channel,
            {"company": "宁波恒力液压科技有限公司", "contact_name": "王工", "phone": "13957121688"},
        ),
    )
    second = lead_of(
        tenant,
        intake(
            tenant,
            channel,
            {
                "company": "宁波恒力液压科技（有限公司）",
                "contact_name": " 王 工 ",
                "phone": "13857160321",
            },
        ),
    )
    assert second.revisit_of == first
    other = lead_of(
        tenant,
        intake(
            tenant,
            channel,
            {"company": "宁波恒力液压科技有限公司", "contact_name": "李工", "phone": "13706543210"},
        ),
    )
    assert other.revisit_of is None


def test_after_30_days_it_is_a_new_original(tenant, channel):
    first = lead_of(tenant, intake(tenant, channel, {"phone": "13957121688"}))
    with tenant_context(tenant):
        Lead.objects.filter(pk=first.pk).update(
            created_at=timezone.now() - timezone.timedelta(days=31)
        )
    assert (
        lead_of(
            tenant, intake(tenant, channel, {"phone": "13957121688", "message": "x"})
        ).revisit_of
        is None
    )


def test_duplicates_are_per_tenant(world, tenant, channel):
    intake(tenant, channel, {"phone": "13957121688"})
    other_channel = make_channel(world.b.tenant)
    lead = lead_of(world.b.tenant, intake(world.b.tenant, other_channel, {"phone": "13957121688"}))
    assert lead.revisit_of is None


def test_tags_from_keywords_channel_and_whole_tokens(tenant):
    urgent, imaging, expo = (
        make_tag(tenant, "紧急"),
        make_tag(tenant, "影像设备"),
        make_tag(tenant, "展会"),
    )
    with tenant_context(tenant):
        TaggingRule.objects.create(tenant=tenant, tag=urgent, keywords="急需，招标\n替换老型号")
        TaggingRule.objects.create(tenant=tenant, tag=imaging, keywords="DR, CT")
        TaggingRule.objects.create(
            tenant=tenant, tag=make_tag(tenant, "停用"), keywords="报价", is_active=False
        )
    channel = make_channel(tenant, tags=[expo])

    def tags(message):
        event = intake(
            tenant, channel, {"phone": f"139{abs(hash(message)) % 10**8:08d}", "message": message}
        )
        return {t.name for t in lead_of(tenant, event).tags.all()}

    assert tags("医院急需一台ct机，请报价") == {"紧急", "影像设备", "展会"}
    assert tags("我们想替换老型号的dr") == {"紧急", "影像设备", "展会"}
    assert tags("ACT and CTO are not CT scanners? no: DRAM") == {"展会", "影像设备"}
    assert tags("普通咨询") == {"展会"}


def test_latin_keywords_need_whole_tokens(tenant):
    imaging = make_tag(tenant, "影像设备")
    with tenant_context(tenant):
        TaggingRule.objects.create(tenant=tenant, tag=imaging, keywords="CT")
    channel = make_channel(tenant)
    lead = lead_of(
        tenant, intake(tenant, channel, {"phone": "13912345670", "message": "ACTION plan"})
    )
    assert list(lead.tags.all()) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_do_not_make_two_originals(world):
    """Two workers process two events with the same phone at the same moment."""
    tenant = world.a.tenant
    channel = make_channel(tenant)
    with tenant_context(tenant):
        events = [
            inbound_event_receive(
                channel=channel,
                raw_body=f"{i}",
                source="webhook",
                payload={"phone": "13957121688", "message": f"#{i}"},
            )[0]
            for i in range(4)
        ]
    start = threading.Barrier(len(events))
    errors = []

    def work(event_id):
        try:
            # All four set off together, each then opening its transaction: waiting inside
            # one would need four server connections at once, which a pooler with fewer
            # (`make scale`: two) never gives, and the barrier would break.
            start.wait(timeout=10)
            with tenant_context(tenant):
                inbound_event_process(event_id=event_id)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(e.pk,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    with tenant_context(tenant):
        failures = list(
            InboundEvent.objects.exclude(status=EventStatus.PROCESSED).values_list(
                "error", flat=True
            )
        )
        assert failures == []
        assert Lead.objects.count() == 4
        originals = list(Lead.objects.originals())
        assert len(originals) == 1
        assert Lead.objects.filter(revisit_of=originals[0]).count() == 3


@platform_db
def test_a_lost_broker_message_is_re_driven_to_a_real_worker(world, celery_worker_thread):
    """Simulate the broker losing the message: the event is stored but never queued."""
    from tests.conftest import wait_for

    tenant = world.a.tenant
    channel = make_channel(tenant)
    with tenant_context(tenant):
        event = InboundEvent.objects.create(
            tenant=tenant,
            channel=channel,
            source="webhook",
            raw_body="{}",
            body_sha256="x",
            payload={"phone": "13957121688"},
            received_at=timezone.now() - timezone.timedelta(minutes=3),
        )
        fresh = InboundEvent.objects.create(
            tenant=tenant,
            channel=channel,
            source="webhook",
            raw_body="{}",
            body_sha256="y",
            payload={"phone": "13857160321"},
        )
    assert redrive_inbound_events() == 1  # the fresh one may still be in flight

    def processed():
        with tenant_context(tenant):
            return InboundEvent.objects.get(pk=event.pk).status == EventStatus.PROCESSED

    assert wait_for(processed)
    with tenant_context(tenant):
        assert InboundEvent.objects.get(pk=event.pk).lead.phone == "+8613957121688"
        # Too fresh for the sweep, which did not queue it: the stale event's task took it
        # along in its batch (the tenant's queued events).
        assert InboundEvent.objects.get(pk=fresh.pk).lead.phone == "+8613857160321"


def test_the_registry_check_flags_an_unknown_company(tenant, channel, httpserver, settings):
    from leads.intake.registry import lead_verify_company

    settings.REGISTRY_VERIFIER_URL = httpserver.url_for("/verify")
    httpserver.expect_request("/verify", query_string={"name": "查无此司"}).respond_with_json(
        {"found": False}
    )
    httpserver.expect_request(
        "/verify", query_string={"name": "宁波恒力液压科技有限公司"}
    ).respond_with_json({"found": True, "name": "宁波恒力液压科技有限公司", "status": "存续"})
    unknown = lead_of(
        tenant, intake(tenant, channel, {"phone": "13957121688", "company": "查无此司"})
    )
    known = lead_of(
        tenant,
        intake(tenant, channel, {"phone": "13857160321", "company": "宁波恒力液压科技有限公司"}),
    )
    with tenant_context(tenant):
        lead_verify_company(lead_id=unknown.pk)
        lead_verify_company(lead_id=known.pk)
        unknown.refresh_from_db()
        known.refresh_from_db()
        assert LeadEvent.objects.filter(
            lead=known, kind="registry", message__contains="存续"
        ).exists()
    assert unknown.registry_status == RegistryStatus.NOT_FOUND and unknown.is_suspect
    assert known.registry_status == RegistryStatus.VERIFIED and not known.is_suspect


def test_a_registry_outage_never_blocks_or_flags(tenant, channel, httpserver, settings):
    from django.core.cache import cache

    from leads.intake.registry import lead_verify_company

    cache.clear()
    settings.REGISTRY_VERIFIER_URL = httpserver.url_for("/verify")
    httpserver.expect_request("/verify").respond_with_data("down", status=503)
    lead = lead_of(tenant, intake(tenant, channel, {"phone": "13957121688", "company": "甲公司"}))
    with tenant_context(tenant):
        lead_verify_company(lead_id=lead.pk)
        lead.refresh_from_db()
    assert lead.registry_status == RegistryStatus.ERROR and not lead.is_suspect


def test_the_douyin_channel_end_to_end(tenant):
    from tests.leads.test_mapping import DOUYIN

    channel = make_channel(tenant, type="douyin", preset=MappingPreset.DOUYIN)
    lead = lead_of(tenant, intake(tenant, channel, DOUYIN))
    assert lead.company == "杭州明德医疗器械有限公司"
    assert lead.company_size == 2
    assert lead.utm["utm_source"] == "douyin"
    assert lead.external_id == "7301234567890"


def test_suspect_reasons_and_the_timeline_read_in_the_readers_language(tenant, channel):
    from django.utils import translation

    lead = lead_of(tenant, intake(tenant, channel, {"phone": "12345", "company": "甲"}))
    assert lead.suspect_reasons == [{"code": "phone_unrecognised", "phone": "12345"}]
    with tenant_context(tenant):
        intake_event = lead.events.get(kind="intake")
    with translation.override("en"):
        assert lead.suspect_reason_texts() == ["Phone number not recognised: 12345"]
        assert intake_event.text == f"Received from {channel.name}"
    with translation.override("zh-hans"):
        assert lead.suspect_reason_texts() == ["无法识别的电话号码：12345"]
        assert intake_event.text.startswith("接收自")


# -- placeholder phones, unmappable optional fields, null in a map, error texts ------------


@pytest.mark.parametrize(
    "phone", ["13800000000", "13888888888", "12345678901", "13333333333", "11111111111"]
)
def test_a_placeholder_phone_is_flagged_and_never_makes_a_revisit(tenant, channel, world, phone):
    first = lead_of(tenant, intake(tenant, channel, {"phone": phone, "company": "宁波恒力液压"}))
    with tenant_context(tenant):
        Lead.objects.filter(pk=first.pk).update(owner=world.a.rep, status=LeadStatus.ASSIGNED)
    second = lead_of(
        tenant,
        intake(tenant, channel, {"phone": phone, "company": "杭州明德医疗器械", "message": "DR"}),
    )
    assert second.revisit_of is None
    assert second.is_suspect
    assert any("Placeholder" in r for r in second.suspect_reason_texts()), second.suspect_reasons
    # Dispatched and scored as any new lead, not handed to the first lead's owner unscored.
    assert second.status == LeadStatus.ASSIGNED and second.score is not None
    with tenant_context(tenant):
        assert not second.events.filter(kind="revisit").exists()
        assert second.decisions.get().kind == "auto"


def test_four_companies_with_one_placeholder_phone_stay_four_originals(tenant, channel):
    companies = ["宁波恒力液压", "杭州明德医疗器械", "苏州康泰医疗", "无锡华光锅炉"]
    leads = [
        lead_of(tenant, intake(tenant, channel, {"phone": "13800000000", "company": c}))
        for c in companies
    ]
    assert [lead.revisit_of_id for lead in leads] == [None] * 4
    assert all(lead.is_suspect and lead.score is not None for lead in leads)


def test_the_same_company_and_contact_still_make_a_revisit_with_a_placeholder_phone(
    tenant, channel
):
    payload = {
        "phone": "13800000000",
        "company": "宁波恒力液压科技有限公司",
        "contact_name": "王工",
    }
    first = lead_of(tenant, intake(tenant, channel, payload))
    second = lead_of(tenant, intake(tenant, channel, {**payload, "message": "再问一次"}))
    assert second.revisit_of == first


def test_a_web_form_company_size_band_is_its_class(tenant, channel):
    lead = lead_of(
        tenant, intake(tenant, channel, {"phone": "13957121688", "company_size": "51-200人"})
    )
    assert lead.company_size == 2 and lead.intake_issues == []
    lead = lead_of(
        tenant, intake(tenant, channel, {"phone": "13957121689", "company_size": "1000人以上"})
    )
    assert lead.company_size == 5


def test_an_unmappable_optional_field_never_blocks_the_lead(tenant, channel):
    event = intake(
        tenant,
        channel,
        {
            "phone": "13957121688",
            "company": "宁波恒力液压科技有限公司",
            "company_size": "很多人",
            "in_tender": "也许",
            "title": {"cn": "采购经理"},
        },
    )
    assert event.status == EventStatus.PROCESSED, event.error
    lead = lead_of(tenant, event)
    assert lead.company == "宁波恒力液压科技有限公司"
    assert lead.company_size is None and lead.in_tender is None and lead.title == ""
    # The values as received are kept on the lead and its event, and flagged.
    kept = {(i["field"], i["value"]) for i in lead.intake_issues}
    assert kept == {
        ("company_size", "很多人"),
        ("in_tender", "也许"),
        ("title", '{"cn": "采购经理"}'),
    }
    assert event.mapping_issues == lead.intake_issues
    assert all(i["code"] == "unmapped" for i in lead.intake_issues)
    from django.utils import translation

    with translation.override("zh-hans"):
        texts = lead.intake_issue_texts()
    assert any("公司规模档位" in t and "很多人" in t for t in texts), texts
    # Assigned and scored as usual.
    assert lead.status == LeadStatus.ASSIGNED and lead.score is not None


def test_a_lead_without_any_contact_still_fails(tenant, channel):
    event = intake(tenant, channel, {"company": "甲公司", "company_size": "很多人"})
    assert event.status == EventStatus.FAILED and event.lead is None
    assert event.error_detail == {"code": "no_contact"}


def test_a_contact_field_that_cannot_be_read_still_fails(tenant, channel):
    event = intake(tenant, channel, {"phone": {"mobile": "13957121688"}})
    assert event.status == EventStatus.FAILED and event.lead is None
    assert event.error_detail["code"] == "not_single_value"


def test_null_in_a_value_map_leaves_the_field_empty(tenant, channel):
    channel.mapping = [
        {"field": "company_size", "path": "size", "map": {"小": 1, "不清楚": None}},
        {"field": "in_tender", "path": "tender", "map": {"不清楚": None}, "default": False},
    ]
    with tenant_context(tenant):
        channel.save()
    event = intake(tenant, channel, {"phone": "13957121688", "size": "不清楚", "tender": "不清楚"})
    assert event.status == EventStatus.PROCESSED, event.error
    lead = lead_of(tenant, event)
    assert lead.company_size is None and lead.in_tender is None
    assert lead.intake_issues == []


def test_an_over_long_webhook_value_is_cut_and_flagged_the_payload_keeps_it(tenant, channel):
    name, message = "王" * 300, "需" * 48_000
    event = intake(
        tenant, channel, {"phone": "13957121688", "contact_name": name, "message": message}
    )
    assert event.status == EventStatus.PROCESSED
    lead = lead_of(tenant, event)
    assert lead.contact_name == "王" * 100 and len(lead.message) == 10_000
    assert {(i["code"], i["field"], i["length"], i["limit"]) for i in lead.intake_issues} == {
        ("too_long", "contact_name", 300, 100),
        ("too_long", "message", 48_000, 10_000),
    }
    assert event.payload["contact_name"] == name and event.payload["message"] == message


def test_intake_errors_read_in_the_readers_language_with_field_labels(tenant, channel):
    from django.utils import translation

    event = intake(tenant, channel, {"phone": ["13957121688"]})
    assert event.status == EventStatus.FAILED
    assert "phone" in event.error  # the technical record, in English
    with translation.override("zh-hans"):
        text = event.error_text
    assert text.startswith("电话：") and "phone" not in text and "value" not in text, text
    event = intake(tenant, channel, {"company": "甲"})
    with translation.override("zh-hans"):
        assert event.error_text == (
            "无法联系此线索：至少需要电话、邮箱或外部 ID（请检查渠道的字段映射）。"
        )
    with translation.override("en"):
        assert event.error_text.startswith("No way to reach this lead")
