"""The inbox and the channel in the admin: re-processing, errors in the reader's words,
and the field mapping problems a channel's leads were made with."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from crm.audit import object_ref
from crm.models import AuditEvent
from crm.services import TenantMismatchError
from crm.tenancy import tenant_context
from leads.intake.channels import channel_rotate_secret
from leads.intake.services import inbound_event_process, inbound_event_receive
from leads.models import EventStatus, InboundEvent
from tests.conftest import platform_db
from tests.leads.factories import make_channel, make_event, post_signed

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:leads_inboundevent_changelist"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _intake(tenant, channel, payload, **kw):
    with tenant_context(tenant):
        event, _created = inbound_event_receive(
            channel=channel, raw_body=repr(payload), source="webhook", payload=payload, **kw
        )
        inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
    return event


def _failed(tenant, channel, **fields):
    return make_event(tenant, channel, status=EventStatus.FAILED, error="x", **fields)


def test_re_processing_one_failed_event_from_the_failed_filter_counts_right(world, login):
    channel = make_channel(world.a.tenant)
    event = _failed(world.a.tenant, channel)
    client = login(world.a.admin)

    response = client.post(
        reverse(CHANGELIST) + "?status__exact=failed",
        {"action": "reprocess", "_selected_action": [event.pk]},
        follow=True,
    )

    assert _messages(response) == ["1 个失败事件已重新排队。"]
    with tenant_context(world.a.tenant):
        assert InboundEvent.objects.get(pk=event.pk).status == EventStatus.RECEIVED


def test_re_processing_a_mixed_selection_counts_queued_and_left_alone(world, login):
    channel = make_channel(world.a.tenant)
    failed = [_failed(world.a.tenant, channel) for _ in range(2)]
    done = make_event(world.a.tenant, channel, status=EventStatus.PROCESSED)
    client = login(world.a.admin)

    response = client.post(
        reverse(CHANGELIST),
        {"action": "reprocess", "_selected_action": [e.pk for e in [*failed, done]]},
        follow=True,
    )

    assert _messages(response) == [
        "2 个失败事件已重新排队。",
        "所选事件中有 1 个不是“处理失败”状态，保持原样：只有处理失败的事件会重新处理。",
    ]
    response = client.post(
        reverse(CHANGELIST) + "?status__exact=processed",
        {"action": "reprocess", "_selected_action": [done.pk]},
        follow=True,
    )
    assert _messages(response) == [
        "所选事件中有 1 个不是“处理失败”状态，保持原样：只有处理失败的事件会重新处理。"
    ]


def test_the_inbox_shows_intake_errors_in_chinese_with_field_labels(world, login, client):
    channel = make_channel(world.a.tenant)
    post_signed(client, channel, None, raw=b"{not json")
    listed = _intake(world.a.tenant, channel, {"company": ["甲", "乙"], "phone": "1"})
    with tenant_context(world.a.tenant):
        body_event = InboundEvent.objects.get(status=EventStatus.FAILED)
    no_contact = _intake(world.a.tenant, channel, {"company": "甲公司"})
    admin = login(world.a.admin)

    listing = admin.get(reverse(CHANGELIST)).text
    assert "body is not JSON" not in listing and "No way to reach" not in listing
    assert "请求体不是有效的 JSON（第 1 行第 2 列）" in listing
    assert "无法联系此线索" in listing

    page = admin.get(reverse("admin:leads_inboundevent_change", args=[body_event.pk])).text
    assert "请求体不是有效的 JSON（第 1 行第 2 列）" in page and "body is not JSON" not in page
    page = admin.get(reverse("admin:leads_inboundevent_change", args=[no_contact.pk])).text
    assert "无法联系此线索：至少需要电话、邮箱或外部 ID" in page
    # A list where the company belongs: the lead is made; the problem is on its event.
    assert listed.status == EventStatus.PROCESSED
    page = admin.get(reverse("admin:leads_inboundevent_change", args=[listed.pk])).text
    assert "公司名称无法映射" in page and "company" not in page.split("mapping-issues")[1][:300]


def test_the_channel_lists_its_field_mapping_problems(world, login):
    channel = make_channel(world.a.tenant)
    for phone in ("13957121688", "13957121689"):
        _intake(world.a.tenant, channel, {"phone": phone, "company_size": "约300人"})
    _intake(world.a.tenant, channel, {"phone": "13957121690", "in_tender": "也许"})
    _intake(world.a.tenant, channel, {"phone": "13957121691", "company_size": "51-200人"})
    other = make_channel(world.b.tenant)
    _intake(world.b.tenant, other, {"phone": "13957121692", "company_size": "别家的值"})
    admin = login(world.a.admin)

    page = admin.get(reverse("admin:leads_channel_change", args=[channel.pk])).text

    assert "字段映射问题" in page
    table = page.split('data-testid="mapping-problems"')[1].split("</table>")[0]
    rows = [r for r in table.split("<tr>")[2:]]
    assert len(rows) == 2
    assert "公司规模档位" in rows[0] and "约300人" in rows[0] and "<td>2</td>" in rows[0]
    assert "是否招标" in rows[1] and "也许" in rows[1] and "<td>1</td>" in rows[1]
    assert "别家的值" not in page

    listing = admin.get(reverse(CHANGELIST), {"mapping_problems": "yes"})
    assert len(listing.context["cl"].result_list) == 3


def test_the_mapping_accepts_null_for_leave_empty_in_the_admin(world, login):
    channel = make_channel(world.a.tenant)
    response = login(world.a.admin).post(
        reverse("admin:leads_channel_change", args=[channel.pk]),
        {
            "name": channel.name,
            "type": channel.type,
            "default_grade": "B",
            "is_active": "on",
            "preset": "",
            "mapping": '[{"field": "company_size", "path": "size", "map": {"不清楚": null}}]',
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    with tenant_context(world.a.tenant):
        channel.refresh_from_db()
    assert channel.mapping == [{"field": "company_size", "path": "size", "map": {"不清楚": None}}]


def _rotate(client, channel):
    return client.post(
        reverse("admin:leads_channel_changelist"),
        {"action": "rotate_secret", "_selected_action": [channel.pk]},
    )


def test_rotating_a_channel_secret_shows_the_new_one_once_and_is_audited(world, login):
    channel = make_channel(world.a.tenant)
    old = channel.secret
    response = _rotate(login(world.a.admin), channel)
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        channel.refresh_from_db()
        [event] = AuditEvent.objects.filter(action="channel.rotate_secret")
    assert channel.secret != old
    assert any(channel.secret in m for m in _messages(response))
    assert (event.object_type, event.object_id) == object_ref(channel)
    assert event.actor == world.a.admin.user
    assert old not in str(event.changes) and channel.secret not in str(event.changes)


@platform_db
def test_the_platform_superuser_rotating_a_secret_is_named_in_the_trail(
    world, login, django_user_model
):
    root = django_user_model.objects.create_superuser("root", "root@example.invalid", "pw")
    channel = make_channel(world.b.tenant)
    assert _rotate(login(root), channel).status_code == 302
    with tenant_context(world.b.tenant):
        [event] = AuditEvent.objects.filter(action="channel.rotate_secret")
    assert event.actor == root


def test_a_secret_is_rotated_only_in_its_own_tenant(world):
    channel = make_channel(world.b.tenant)
    old = channel.secret
    with tenant_context(world.a.tenant), pytest.raises(TenantMismatchError):
        channel_rotate_secret(tenant=world.a.tenant, acting_member=world.a.admin, channel=channel)
    with tenant_context(world.b.tenant):
        channel.refresh_from_db()
        assert channel.secret == old
        assert not AuditEvent.objects.filter(action="channel.rotate_secret").exists()
