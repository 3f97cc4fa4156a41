"""Helpdesk tickets through the leads' inbox (F27): POST /hooks/<key>/ of a helpdesk
channel, signed our way or the helpdesk's, stored as an inbound event, then made a
ticket by the inbox's real task and the handler service_feedback registered."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from crm import inbox
from crm.tenancy import tenant_context
from leads.intake.services import inbound_event_reprocess
from leads.models import Channel, ChannelType, EventStatus, InboundEvent, Lead
from leads.tasks import process_inbound_event
from service_feedback.intake import sobot_sign, zendesk_signature
from service_feedback.models import MatchKey, Ticket, TicketStatus
from tests.conftest import platform_db
from tests.leads.factories import make_channel, post_signed
from tests.service_feedback.helpers import customer_with_contact

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent / "payloads"
SOBOT_APPID = "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def body_of(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def helpdesk_channel(tenant, preset="", **fields) -> Channel:
    fields.setdefault("name", "售后工单")
    return make_channel(tenant, type=ChannelType.HELPDESK, preset=preset, **fields)


def sobot_channel(tenant) -> Channel:
    return helpdesk_channel(tenant, "sobot", name="智齿客服", native_app_id=SOBOT_APPID)


def post_zendesk(client, channel, body: bytes, *, secret=None, timestamp=None):
    timestamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret or channel.secret, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
    return client.post(
        f"/hooks/{channel.key}/", data=body, content_type="application/json", headers=headers
    )


def post_sobot(client, channel, body: bytes, *, appid=SOBOT_APPID, key=None, create_time=None):
    create_time = str(create_time or int(time.time()))
    sign = sobot_sign(appid, create_time, key or channel.secret)
    query = urlencode({"appid": appid, "create_time": create_time, "sign": sign})
    return client.post(f"/hooks/{channel.key}/?{query}", data=body, content_type="application/json")


def run_task(response, tenant) -> InboundEvent:
    """The inbox's real task on the event the webhook stored; the event afterwards."""
    assert response.status_code == 202, response.content
    with tenant_context(tenant):
        event = InboundEvent.objects.get(public_id=response.json()["event"])
    process_inbound_event(tenant.pk, event.pk)
    with tenant_context(tenant):
        return InboundEvent.objects.get(pk=event.pk)


def tickets(tenant) -> list[Ticket]:
    with tenant_context(tenant):
        return list(Ticket.objects.select_related("customer").order_by("pk"))


# -- the channel ----------------------------------------------------------------------------


def create_channel(*args: str) -> dict:
    out = StringIO()
    call_command("channel_create", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_channel_create_makes_a_helpdesk_channel_and_prints_key_and_secret(world):
    printed = create_channel("--tenant", "alpha", "--type", "helpdesk", "--name", "售后工单")
    with tenant_context(world.a.tenant):
        channel = Channel.objects.get(key=printed["key"])
    assert channel.type == ChannelType.HELPDESK and channel.preset == ""
    assert printed["secret"] == channel.secret
    assert printed["url"].endswith(f"/hooks/{channel.key}/")

    zendesk = create_channel(
        "--tenant", "alpha", "--type", "helpdesk", "--name", "Zendesk", "--preset", "zendesk"
    )  # fmt: skip
    sobot = create_channel(
        "--tenant", "alpha", "--type", "helpdesk", "--name", "智齿", "--preset", "sobot",
        "--app-id", SOBOT_APPID,
    )  # fmt: skip
    with tenant_context(world.a.tenant):
        assert Channel.objects.get(key=zendesk["key"]).preset == "zendesk"
        assert Channel.objects.get(key=sobot["key"]).native_app_id == SOBOT_APPID


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "helpdesk", "--preset", "douyin"], "Valid presets: sobot, zendesk, freshdesk"),
        (["--type", "douyin", "--preset", "zendesk"], "Unknown preset 'zendesk'"),
        (["--type", "helpdesk", "--preset", "sobot"], "needs --app-id"),
    ],
)
def test_channel_create_refuses_a_preset_the_type_cannot_declare(world, args, message):
    with pytest.raises(CommandError, match=message):
        create_channel("--tenant", "alpha", "--name", "x", *args)


def test_the_admin_refuses_a_lead_preset_on_a_helpdesk_channel(world):
    channel = Channel(tenant=world.a.tenant, name="x", type=ChannelType.HELPDESK, preset="douyin")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        channel.clean()
    assert "preset" in caught.value.message_dict


def test_the_helpdesk_handler_is_registered_with_its_presets():
    handler = inbox.handler_for(ChannelType.HELPDESK)
    assert handler is not None
    assert set(handler.presets) == {"sobot", "zendesk", "freshdesk"}
    assert inbox.handler_for(ChannelType.WEB_FORM) is None


# -- each preset, end to end -----------------------------------------------------------------


def test_a_sobot_ticket_closed_push_signed_natively_becomes_a_matched_ticket(client, world):
    t = world.a.tenant
    customer = customer_with_contact(world.a, "宁波恒力液压", phone="", code="C-HL-0042")
    channel = sobot_channel(t)

    event = run_task(post_sobot(client, channel, body_of(payload("sobot_ticket_closed.json"))), t)

    assert event.status == EventStatus.PROCESSED and event.error == ""
    assert event.attempts == 1 and event.lead_id is None
    [ticket] = tickets(t)
    assert ticket.external_id == "6a1f0c2e9b8d4e7fa3c5b1d2e4f60789"
    assert ticket.event_id == event.pk and ticket.channel_id == channel.pk
    assert ticket.status == TicketStatus.CLOSED
    assert ticket.subject.startswith("液压站HP-200压力不稳")
    assert ticket.customer == customer and ticket.match_key == MatchKey.CODE
    assert (ticket.product_line, ticket.product_model, ticket.fault_code) == (
        "液压动力单元",
        "HP-200",
        "E-PR-07",
    )
    assert (ticket.province, ticket.city) == ("浙江", "宁波")
    assert ticket.phone_key == "+8613957121688"
    assert ticket.email == "wangjg@henglihydraulic.com"
    assert ticket.satisfaction == 5
    # Sobot's "2026-12-01 09:12:33" is the tenant's local time (Asia/Shanghai).
    assert ticket.opened_at == datetime(2026, 12, 1, 1, 12, 33, tzinfo=UTC)
    assert ticket.first_response_minutes == 7  # 09:12:33 → 09:20:05, whole minutes
    assert "upsell" in ticket.flags  # 增购 / 扩容 / 再买
    with tenant_context(t):
        assert Lead.objects.count() == 0  # a helpdesk event never becomes a lead


def test_a_sobot_sign_in_the_body_is_accepted_too(client, world):
    t = world.a.tenant
    channel = sobot_channel(t)
    data = payload("sobot_ticket_closed.json")
    create_time = str(int(time.time()))
    data.update(
        appid=SOBOT_APPID,
        create_time=create_time,
        sign=sobot_sign(SOBOT_APPID, create_time, channel.secret),
    )
    response = client.post(
        f"/hooks/{channel.key}/", data=body_of(data), content_type="application/json"
    )
    assert run_task(response, t).status == EventStatus.PROCESSED
    assert len(tickets(t)) == 1


def test_a_zendesk_ticket_event_signed_natively_becomes_an_unmatched_ticket(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t, "zendesk", name="Zendesk")

    body = body_of(payload("zendesk_ticket_status_changed.json"))
    event = run_task(post_zendesk(client, channel, body), t)

    assert event.status == EventStatus.PROCESSED
    [ticket] = tickets(t)
    assert ticket.external_id == "35436"
    assert ticket.status == TicketStatus.RESOLVED
    assert ticket.subject == "HP-200 overpressure trip after firmware update"
    assert ticket.opened_at == datetime(2026, 12, 1, 2, 10, 44, tzinfo=UTC)
    assert ticket.resolved_at == datetime(2026, 12, 1, 8, 55, 21, tzinfo=UTC)
    # A Zendesk event names its requester by id only: stored, queued for linking.
    assert ticket.customer is None and ticket.match_key == MatchKey.NONE
    with tenant_context(t):
        assert list(Ticket.objects.unmatched()) == [ticket]


def test_a_zendesk_trigger_body_with_the_requester_matches_by_e_mail(client, world):
    t = world.a.tenant
    customer = customer_with_contact(world.a, phone="", email="ops@henglihydraulic.com")
    channel = helpdesk_channel(t, "zendesk", name="Zendesk")
    data = {
        "ticket": {
            "id": "35437",
            "title": "Seal kit",
            "description": "Need a seal kit",
            "status": "Open",
            "created_at": "2026-12-01T02:10:44Z",
            "requester": {"name": "Ops", "email": "ops@henglihydraulic.com", "phone": ""},
        }
    }
    assert run_task(post_signed(client, channel, data), t).status == EventStatus.PROCESSED
    [ticket] = tickets(t)
    assert ticket.customer == customer and ticket.match_key == MatchKey.EMAIL
    assert ticket.status == TicketStatus.OPEN


def test_a_freshdesk_automation_webhook_signed_our_way_becomes_a_ticket(client, world):
    t = world.a.tenant
    customer = customer_with_contact(world.a, phone="", email="chen.li@henglihydraulic.com")
    channel = helpdesk_channel(t, "freshdesk", name="Freshdesk")

    event = run_task(post_signed(client, channel, payload("freshdesk_automation.json")), t)

    assert event.status == EventStatus.PROCESSED
    [ticket] = tickets(t)
    assert ticket.external_id == "8842"
    assert ticket.status == TicketStatus.RESOLVED
    assert ticket.text.startswith("Customer asks for a replacement seal kit")
    assert ticket.customer == customer and ticket.match_key == MatchKey.EMAIL
    assert ticket.first_response_minutes == 11
    assert (ticket.product_model, ticket.fault_code) == ("HP-200", "SEAL-02")


def test_a_generic_ticket_signed_our_way_is_stored_unmatched_never_dropped(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t)

    event = run_task(post_signed(client, channel, payload("generic_ticket.json")), t)

    assert event.status == EventStatus.PROCESSED
    [ticket] = tickets(t)
    assert ticket.external_id == "SR-2026-1201-017"
    assert ticket.status == TicketStatus.CLOSED
    assert ticket.customer is None and ticket.match_key == MatchKey.NONE
    assert (ticket.satisfaction, ticket.nps) == (4, 9)
    assert ticket.resolution_minutes == 385  # 10:05 → 16:30
    assert "referral" in ticket.flags  # 推荐


def test_our_signature_is_accepted_on_a_natively_signing_channel(client, world):
    t = world.a.tenant
    channel = sobot_channel(t)
    response = post_signed(client, channel, payload("sobot_ticket_closed.json"))
    assert run_task(response, t).status == EventStatus.PROCESSED


# -- forged signatures ----------------------------------------------------------------------


def _refused(response, tenant, error="signature does not match"):
    assert response.status_code == 401
    assert response.json() == {"error": error}
    with tenant_context(tenant):
        assert not InboundEvent.objects.exists()


def test_a_forged_zendesk_signature_is_401_and_nothing_is_stored(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t, "zendesk")
    body = body_of(payload("zendesk_ticket_status_changed.json"))
    _refused(post_zendesk(client, channel, body, secret="not-the-secret"), t)


def test_a_zendesk_body_changed_after_signing_is_401(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t, "zendesk")
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "X-Zendesk-Webhook-Signature": zendesk_signature(channel.secret, timestamp, b"{}"),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
    response = client.post(
        f"/hooks/{channel.key}/",
        data=body_of(payload("zendesk_ticket_status_changed.json")),
        content_type="application/json",
        headers=headers,
    )
    _refused(response, t)


def test_an_old_zendesk_timestamp_is_401(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t, "zendesk")
    old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = post_zendesk(client, channel, b"{}", timestamp=old)
    assert response.status_code == 401
    assert "away from now" in response.json()["error"]


def test_a_forged_sobot_sign_is_401(client, world):
    t = world.a.tenant
    channel = sobot_channel(t)
    body = body_of(payload("sobot_ticket_closed.json"))
    _refused(post_sobot(client, channel, body, key="not-the-app-key"), t)


def test_another_appid_or_an_old_create_time_is_401(client, world):
    t = world.a.tenant
    channel = sobot_channel(t)
    body = body_of(payload("sobot_ticket_closed.json"))
    _refused(
        post_sobot(client, channel, body, appid="someone-else"), t, "appid is not the channel's"
    )
    old = post_sobot(client, channel, body, create_time=int(time.time()) - 3600)
    assert old.status_code == 401 and "away from now" in old.json()["error"]


def test_no_signature_at_all_is_401_saying_what_is_accepted(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t, "zendesk")
    response = client.post(f"/hooks/{channel.key}/", data=b"{}", content_type="application/json")
    assert response.status_code == 401
    assert "X-Zendesk-Webhook-Signature" in response.json()["error"]
    # A channel without native signing answers exactly as a lead channel does.
    plain = helpdesk_channel(t, "freshdesk")
    response = client.post(f"/hooks/{plain.key}/", data=b"{}", content_type="application/json")
    assert response.json() == {"error": "X-CRM-Timestamp and X-CRM-Signature are required"}


def test_zendesk_headers_do_not_open_a_lead_channel(client, world):
    """Native signing is the helpdesk handler's: a lead channel keeps our contract only."""
    t = world.a.tenant
    channel = make_channel(t)
    body = body_of({"phone": "13957121688"})
    _refused(
        post_zendesk(client, channel, body), t, "X-CRM-Timestamp and X-CRM-Signature are required"
    )


# -- failures, re-processing, re-delivery, tenants -----------------------------------------


def test_a_malformed_payload_fails_with_its_error_and_is_re_processable(client, world, login):
    t = world.a.tenant
    channel = helpdesk_channel(t, "zendesk", name="Zendesk")  # but it is Freshdesk's body
    response = post_signed(client, channel, payload("freshdesk_automation.json"))

    event = run_task(response, t)

    assert event.status == EventStatus.FAILED
    assert event.error == (
        "not a ticket: type '' is not a Zendesk ticket event (zen:event-type:ticket.*)"
    )
    assert event.error_text == event.error  # what the inbox shows
    assert tickets(t) == []

    # The preset is corrected, and the event re-processed from the inbox's admin.
    with tenant_context(t):
        Channel.objects.filter(pk=channel.pk).update(preset="freshdesk")
    admin = login(world.a.admin)
    done = admin.post(
        reverse("admin:leads_inboundevent_changelist"),
        {"action": "reprocess", "_selected_action": [event.pk]},
        follow=True,
    )
    assert done.status_code == 200
    with tenant_context(t):
        assert InboundEvent.objects.get(pk=event.pk).status == EventStatus.RECEIVED
    process_inbound_event(t.pk, event.pk)
    with tenant_context(t):
        event = InboundEvent.objects.get(pk=event.pk)
    assert event.status == EventStatus.PROCESSED and event.error == ""
    assert event.attempts == 2
    [ticket] = tickets(t)
    assert ticket.external_id == "8842"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"status": "closed"}, "not a ticket: external_id: The ticket has no id."),
        ({"external_id": "X", "status": "gone"}, "not a ticket: status: 'gone' is not one of"),
        ({"external_id": "X", "opened_at": "yesterday"}, "'yesterday' is not a date and time"),
        ({"external_id": "X", "nps": 11}, "nps must be between 0 and 10"),
        ([1, 2], "not a ticket: the payload is not a JSON object"),
    ],
)
def test_generic_payloads_that_are_no_ticket_fail_clearly(client, world, data, error):
    t = world.a.tenant
    event = run_task(post_signed(client, helpdesk_channel(t), data), t)
    assert event.status == EventStatus.FAILED
    assert error in event.error
    assert tickets(t) == []


def test_a_failed_event_fails_alone_in_a_batch(client, world):
    t = world.a.tenant
    channel = helpdesk_channel(t)
    good = post_signed(client, channel, {"external_id": "A-1", "subject": "好"})
    bad = post_signed(client, channel, {"subject": "no id"})
    with tenant_context(t):
        first = InboundEvent.objects.get(public_id=good.json()["event"])
    assert process_inbound_event(t.pk, first.pk) == 2  # one task, both events
    with tenant_context(t):
        statuses = dict(InboundEvent.objects.values_list("public_id", "status"))
    assert statuses[first.public_id] == EventStatus.PROCESSED
    assert [s for p, s in statuses.items() if str(p) == bad.json()["event"]] == ["failed"]
    assert [x.external_id for x in tickets(t)] == ["A-1"]


def test_a_redelivery_of_the_ticket_updates_the_one_ticket(client, world):
    t = world.a.tenant
    channel = sobot_channel(t)
    data = payload("sobot_ticket_closed.json")
    data["data"]["ticket_status"] = 1
    data["data"].pop("solve_time")
    run_task(post_sobot(client, channel, body_of(data)), t)
    [opened] = tickets(t)
    assert opened.status == TicketStatus.OPEN and opened.resolved_at is None

    closed = run_task(post_sobot(client, channel, body_of(payload("sobot_ticket_closed.json"))), t)

    [ticket] = tickets(t)
    assert ticket.pk == opened.pk
    assert ticket.status == TicketStatus.CLOSED and ticket.resolved_at is not None
    assert ticket.event_id == closed.pk
    # The very same body again is a replay: the first event answers, nothing new.
    again = post_sobot(client, channel, body_of(payload("sobot_ticket_closed.json")))
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_another_tenants_key_has_no_effect_across_tenants(client, world):
    a, b = world.a.tenant, world.b.tenant
    mine = helpdesk_channel(a)
    theirs = helpdesk_channel(b)
    customer_with_contact(world.a, phone="13857160321")  # would match in tenant a only

    # a's secret on b's key: refused; b's own ticket lands in b, unmatched there.
    refused = post_signed(client, theirs, payload("generic_ticket.json"), secret=mine.secret)
    assert refused.status_code == 401
    event = run_task(post_signed(client, theirs, payload("generic_ticket.json")), b)

    assert event.status == EventStatus.PROCESSED
    [ticket] = tickets(b)
    assert ticket.channel_id == theirs.pk and ticket.customer is None
    assert tickets(a) == []
    with tenant_context(a):
        assert not InboundEvent.objects.exists()
    # b's task never touches a's events.
    with tenant_context(a):
        assert inbound_event_reprocess(event=event) is False  # not a's to see


# -- a real worker --------------------------------------------------------------------------


@platform_db
def test_a_helpdesk_push_is_made_a_ticket_by_a_real_worker(client, world, celery_worker_thread):
    from tests.conftest import wait_for

    t = world.a.tenant
    channel = sobot_channel(t)
    customer = customer_with_contact(world.a, phone="", code="C-HL-0042")

    response = post_sobot(client, channel, body_of(payload("sobot_ticket_closed.json")))
    assert response.status_code == 202

    def made():
        with tenant_context(t):
            return Ticket.objects.filter(customer=customer).exists()

    assert wait_for(made)
    with tenant_context(t):
        assert InboundEvent.objects.get().status == EventStatus.PROCESSED


def test_a_handler_that_raises_fails_its_events_and_keeps_nothing_it_wrote(client, world):
    """The inbox's side of the contract (crm.inbox): what a handler wrote before raising is
    rolled back, its events fail with the error, and they stay re-processable."""
    from service_feedback import intake

    t = world.a.tenant
    channel = helpdesk_channel(t)

    def half_then_raise(events):
        intake.process_events(events)  # the tickets are written …
        raise RuntimeError("helpdesk handler broke")  # … then rolled back

    inbox.register_handler(
        inbox.InboxHandler(channel_type=ChannelType.HELPDESK, label="x", process=half_then_raise)
    )
    try:
        event = run_task(post_signed(client, channel, {"external_id": "B-1"}), t)
    finally:
        intake.register()

    assert event.status == EventStatus.FAILED
    assert event.error == "RuntimeError: helpdesk handler broke"
    assert tickets(t) == []
    with tenant_context(t):
        assert inbound_event_reprocess(event=event) is True
    process_inbound_event(t.pk, event.pk)
    assert [x.external_id for x in tickets(t)] == ["B-1"]
