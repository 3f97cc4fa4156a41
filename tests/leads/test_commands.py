"""Operator commands of lead intake: channel_create, redrive_inbound, and the demo seed."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import AuditEvent
from crm.tenancy import tenant_context
from leads.models import (
    Channel,
    ChannelType,
    EventStatus,
    InboundEvent,
    Lead,
    MappingPreset,
)
from tests.conftest import platform_db
from tests.leads.factories import make_event, post_signed


def create_channel(*args: str) -> dict:
    out = StringIO()
    call_command("channel_create", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())  # exactly one JSON object, nothing else


@pytest.mark.django_db
def test_channel_create_prints_the_credentials_as_json(world):
    printed = create_channel(
        "--tenant", "alpha", "--type", "douyin", "--name", "抖音线索广告", "--grade", "A",
        "--preset", "douyin",
    )  # fmt: skip
    assert set(printed) == {"key", "secret", "url", "form_url"}
    key = printed["key"]
    assert len(key) >= 22
    assert len(printed["secret"]) >= 32
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    assert printed["url"] == f"{base}/hooks/{key}/"
    assert printed["form_url"] == f"{base}/f/{key}/"

    with tenant_context(world.a.tenant):
        channel = Channel.objects.get(key=key)
        assert channel.tenant == world.a.tenant
        assert (channel.name, channel.type) == ("抖音线索广告", ChannelType.DOUYIN)
        assert (channel.default_grade, channel.preset) == ("A", MappingPreset.DOUYIN)
        assert channel.secret == printed["secret"]
        entry = AuditEvent.objects.get(action="channel.create")
        assert entry.actor is None
        assert entry.object_id == str(channel.public_id)
    with tenant_context(world.b.tenant):
        assert not Channel.objects.filter(key=key).exists()


@pytest.mark.django_db
def test_channel_create_defaults_to_grade_b_and_no_preset(world):
    printed = create_channel("--tenant", "beta", "--type", "web_form", "--name", "官网表单")
    with tenant_context(world.b.tenant):
        channel = Channel.objects.get(key=printed["key"])
    assert (channel.default_grade, channel.preset) == ("B", "")


@pytest.mark.django_db
def test_channel_create_refuses_an_unknown_type_and_lists_the_valid_ones(world):
    with pytest.raises(CommandError) as excinfo:
        create_channel("--tenant", "alpha", "--type", "fax", "--name", "传真")
    message = str(excinfo.value)
    assert "fax" in message
    for value in ChannelType.values:
        assert value in message
    with tenant_context(world.a.tenant):
        assert not Channel.objects.exists()


@pytest.mark.django_db
def test_channel_create_refuses_an_unknown_tenant(world):
    with pytest.raises(CommandError, match="nosuch"):
        create_channel("--tenant", "nosuch", "--type", "web_form", "--name", "官网表单")


@pytest.mark.django_db
def test_channel_create_refuses_a_bad_grade_or_preset(world):
    with pytest.raises(CommandError, match="grade"):
        create_channel("--tenant", "alpha", "--type", "sms", "--name", "短信", "--grade", "D")
    with pytest.raises(CommandError, match="preset"):
        create_channel("--tenant", "alpha", "--type", "sms", "--name", "短信", "--preset", "x")


@pytest.mark.django_db
def test_a_webhook_signed_with_the_printed_secret_is_accepted(world, client):
    printed = create_channel("--tenant", "alpha", "--type", "wechat_oa", "--name", "公众号菜单")
    with tenant_context(world.a.tenant):
        channel = Channel.objects.get(key=printed["key"])
    payload = {
        "company": "宁波恒力液压科技有限公司",
        "contact_name": "王工",
        "phone": "13812345678",
    }

    response = post_signed(client, channel, payload, secret=printed["secret"])
    assert response.status_code == 202, response.content
    assert response.json()["duplicate"] is False

    wrong = post_signed(client, channel, {"phone": "13812345679"}, secret="not-the-secret")
    assert wrong.status_code == 401


@platform_db
def test_redrive_inline_turns_an_old_received_event_into_a_lead(world):
    tenant = world.a.tenant
    old = make_event(
        tenant,
        payload={
            "company": "杭州华康医疗器械有限公司",
            "contact_name": "李娜",
            "phone": "13905710000",
        },
        received_at=timezone.now() - timedelta(minutes=5),
    )
    fresh = make_event(tenant, payload={"phone": "13905710001"})  # under 2 min: left alone
    out = StringIO()

    call_command("redrive_inbound", "--process-inline", stdout=out)

    assert "1 became leads" in out.getvalue()
    with tenant_context(tenant):
        old.refresh_from_db()
        fresh.refresh_from_db()
        assert old.status == EventStatus.PROCESSED
        assert old.lead.company == "杭州华康医疗器械有限公司"
        assert old.lead.phone == "+8613905710000"
        assert fresh.status == EventStatus.RECEIVED
        assert Lead.objects.count() == 1

    call_command("redrive_inbound", "--process-inline", stdout=StringIO())  # nothing left
    with tenant_context(tenant):
        assert Lead.objects.count() == 1


@platform_db
def test_redrive_queues_the_stale_events_again(world, monkeypatch):
    from leads import tasks

    queued = []
    monkeypatch.setattr(tasks.process_inbound_event, "delay", lambda *a: queued.append(a))
    event = make_event(world.b.tenant, received_at=timezone.now() - timedelta(minutes=3))
    out = StringIO()

    call_command("redrive_inbound", stdout=out)

    assert queued == [(world.b.tenant.pk, event.pk)]
    assert out.getvalue().startswith("queued 1 ")


@pytest.mark.django_db
def test_a_web_form_channel_takes_company_size_bands_and_never_loses_a_lead(world, client):
    from leads.intake.services import inbound_event_process

    printed = create_channel("--tenant", "alpha", "--type", "web_form", "--name", "官网表单")
    with tenant_context(world.a.tenant):
        channel = Channel.objects.get(key=printed["key"])
    payloads = [
        {"company": "苏州康泰医疗器械有限公司", "phone": "13957121688", "company_size": "51-200人"},
        {"company": "无锡华光锅炉", "phone": "13957121689", "company_size": "二百来人"},
    ]
    for payload in payloads:
        assert post_signed(client, channel, payload, secret=printed["secret"]).status_code == 202
    with tenant_context(world.a.tenant):
        for event in InboundEvent.objects.all():
            inbound_event_process(event_id=event.pk)
        events = list(InboundEvent.objects.order_by("pk"))
        assert [e.status for e in events] == [EventStatus.PROCESSED] * 2, [e.error for e in events]
        sized, unsized = (Lead.objects.get(pk=e.lead_id) for e in events)
    assert sized.company_size == 2 and sized.intake_issues == []
    assert unsized.company_size is None
    assert [(i["field"], i["value"]) for i in unsized.intake_issues] == [
        ("company_size", "二百来人")
    ]
