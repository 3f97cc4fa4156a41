"""Plain rows for lead tests. Behaviour is tested through the real services; these are
for fixtures. Every helper takes the tenant and creates inside its context."""

from __future__ import annotations

import json
import time

from django.test import Client

from crm.tenancy import tenant_context
from leads.intake.hooks import sign
from leads.models import Channel, ChannelType, EventSource, InboundEvent, Lead, SourceGrade, Tag


def make_channel(tenant, **fields) -> Channel:
    fields.setdefault("name", "官网表单")
    fields.setdefault("type", ChannelType.WEB_FORM)
    with tenant_context(tenant):
        tags = fields.pop("tags", [])
        channel = Channel.objects.create(tenant=tenant, **fields)
        if tags:
            channel.tags.add(*tags)
        return channel


def make_tag(tenant, name="紧急", **fields) -> Tag:
    with tenant_context(tenant):
        return Tag.objects.get_or_create(tenant=tenant, name=name, defaults=fields)[0]


def make_lead(tenant, channel=None, **fields) -> Lead:
    channel = channel or make_channel(tenant)
    fields.setdefault("company", "宁波恒力液压科技有限公司")
    fields.setdefault("contact_name", "王工")
    fields.setdefault("phone", "+8613812345678")
    fields.setdefault("source_grade", SourceGrade.B)
    with tenant_context(tenant):
        return Lead.objects.create(tenant=tenant, channel=channel, **fields)


def make_event(tenant, channel=None, payload=None, **fields) -> InboundEvent:
    channel = channel or make_channel(tenant)
    payload = payload if payload is not None else {"phone": "13812345678"}
    body = json.dumps(payload, ensure_ascii=False)
    with tenant_context(tenant):
        return InboundEvent.objects.create(
            tenant=tenant,
            channel=channel,
            source=fields.pop("source", EventSource.WEBHOOK),
            raw_body=body,
            body_sha256=str(hash(body)),
            payload=payload,
            **fields,
        )


def post_signed(
    client: Client,
    channel: Channel,
    payload,
    *,
    timestamp=None,
    secret=None,
    idempotency_key=None,
    raw: bytes | None = None,
):
    """POST a signed webhook the way an integrator would."""
    body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"X-CRM-Timestamp": ts, "X-CRM-Signature": sign(secret or channel.secret, ts, body)}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(
        f"/hooks/{channel.key}/", data=body, content_type="application/json", headers=headers
    )


def make_rep(tenant, username=None, **profile):
    """An active rep seat in `tenant` with its RepProfile (`profile`: the profile's fields)."""
    from crm.models import Role
    from leads.models import RepProfile
    from tests.factories import MembershipFactory

    fields = {"tenant": tenant, "role": Role.REP}
    if username:
        fields["user__username"] = username
    member = MembershipFactory(**fields)
    with tenant_context(tenant):
        RepProfile.objects.create(tenant=tenant, membership=member, **profile)
    return member


def make_assigned_lead(tenant, owner, at, channel=None, **fields) -> Lead:
    """A lead with `owner` since `at`, in dispatch round 1 (as the engine leaves it)."""
    from leads.models import LeadStatus

    fields.setdefault("status", LeadStatus.ASSIGNED)
    fields.setdefault("dispatch_round", 1)
    fields.setdefault("created_at", at)
    return make_lead(tenant, channel=channel, owner=owner, assigned_at=at, **fields)
