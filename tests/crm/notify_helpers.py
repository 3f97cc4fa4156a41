"""What the notification tests share (test_notify_send and test_notify_failures): the
test events and private URLs allowed (autouse fixtures), channels, phones, the rows as
stored, and one delivery run as the worker would."""

from __future__ import annotations

import pytest
from django.utils.translation import gettext_lazy

from crm import notify_events as notify_module
from crm.models import Delivery, Outlet
from crm.notify import EventType, notify, register_event
from crm.tasks import deliver
from crm.tenancy import tenant_context

PING = "test.ping"


@pytest.fixture(autouse=True)
def _private_urls_allowed(settings):
    # pytest-httpserver listens on 127.0.0.1; the SSRF guard is tested on its own below.
    settings.NOTIFY_ALLOW_PRIVATE_URLS = True


@pytest.fixture(autouse=True)
def _test_events():
    register_event(
        EventType(
            key=PING,
            label="Ping",
            title="Ping %(n)s",
            body="Body %(n)s",
            default_channels=("in_app", "sms", "wecom", "dingtalk"),
        )
    )
    register_event(
        EventType(
            key="test.managers_only",
            label="For managers",
            title="Managers: %(n)s",
            roles=frozenset({"manager"}),
        )
    )
    register_event(
        EventType(
            key="test.translated",
            label="Translated",
            title=gettext_lazy("Sales manager"),
            default_channels=("in_app", "sms"),
        )
    )
    yield
    for key in (PING, "test.managers_only", "test.translated"):
        notify_module._registry.pop(key, None)


def make_channel(tenant, kind, url="", **fields):
    with tenant_context(tenant):
        return Outlet.objects.create(
            tenant=tenant, kind=kind, name=f"{kind} channel", url=url, **fields
        )


def with_phone(membership, phone):
    membership.phone = phone
    with tenant_context(membership.tenant):
        membership.save(update_fields=["phone"])
    return membership


def rows(tenant, model, **filters):
    with tenant_context(tenant):
        qs = model.objects.filter(**filters).order_by("pk")
        if model is Delivery:  # read outside the tenant later: RLS would hide them then
            qs = qs.select_related("channel", "notification")
        return list(qs)


def one(tenant, model, **filters):
    found = rows(tenant, model, **filters)
    assert len(found) == 1, found
    return found[0]


def ping(side, recipients, n=1, link=""):
    with tenant_context(side.tenant):
        return notify(event=PING, recipients=recipients, params={"n": n}, link=link)


def run(delivery):
    """What the worker does with one queued delivery (the task, called in-process)."""
    return deliver(delivery.tenant_id, delivery.pk)


def refreshed(obj):
    """The row as stored now (related rows loaded: RLS hides them outside the tenant)."""
    return one(obj.tenant, type(obj), pk=obj.pk)


def received(httpserver):
    return [request for request, _response in httpserver.log]
