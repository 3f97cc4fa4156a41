"""The webhook action's calls: written with the firing, sent after the commit outside any
transaction, retried with backoff, and the rule as their circuit breaker (3 failed
attempts in a row pause it, its calls are held, "Resume" releases them)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from werkzeug import Response

from automation import actions, webhooks
from automation.models import CallStatus, Rule, WebhookCall
from crm.models import Notification
from crm.tenancy import tenant_context
from tests.automation.helpers import customer, drain, enquiry, outcomes, rule

pytestmark = pytest.mark.django_db(transaction=True)


def calls(side) -> list[WebhookCall]:
    with tenant_context(side.tenant):
        return list(WebhookCall.objects.order_by("id"))


def due_now(side) -> None:
    """Let the retries' backoff pass."""
    with tenant_context(side.tenant):
        WebhookCall.objects.exclude(next_attempt_at=None).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )


@pytest.fixture
def hook(world, settings, httpserver):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = True
    customer(world.a)
    return rule(
        world.a,
        action="webhook",
        webhook_url=httpserver.url_for("/hook"),
        webhook_secret="s3",
        cooldown_minutes=0,
    )


def test_the_call_is_written_with_the_firing_and_sent_after_the_commit(world, hook, httpserver):
    a = world.a
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    enquiry(a, 1)
    drain(a)
    assert outcomes(a, hook) == ["fired"]
    assert httpserver.log == []  # nothing is called inside the drain's transaction
    [call] = calls(a)
    assert call.status == CallStatus.PENDING and call.attempts == 0
    assert webhooks.send_due(a.tenant) == 1
    [(request, _response)] = httpserver.log
    body = request.get_data()
    assert body == call.body.encode()
    stamp = request.headers["X-CRM-Timestamp"]
    assert request.headers["X-CRM-Signature"] == actions.signature("s3", stamp, body)
    assert json.loads(body)["subject"] == call.subject
    [call] = calls(a)
    assert (call.status, call.attempts, call.http_status) == (CallStatus.SENT, 1, 200)
    assert call.sent_at is not None
    assert webhooks.send_due(a.tenant) == 0  # sent once


def test_it_is_never_sent_inside_a_transaction(world, hook):
    with transaction.atomic(), pytest.raises(RuntimeError):
        webhooks.send_due(world.a.tenant)


def test_a_failed_call_is_retried_with_backoff(world, hook, httpserver):
    a = world.a
    httpserver.expect_ordered_request("/hook").respond_with_response(Response("down", 503))
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    enquiry(a, 1)
    drain(a)
    before = timezone.now()
    assert webhooks.send_due(a.tenant) == 1
    [call] = calls(a)
    assert (call.status, call.attempts, call.http_status) == (CallStatus.FAILED, 1, 503)
    assert "HTTP 503" in call.last_error
    assert call.next_attempt_at >= before + timedelta(seconds=30)  # the first backoff
    assert webhooks.send_due(a.tenant) == 0  # not due yet
    with tenant_context(a.tenant):
        assert Rule.objects.get(pk=hook.pk).consecutive_failures == 1
    due_now(a)
    assert webhooks.send_due(a.tenant) == 1
    [call] = calls(a)
    assert (call.status, call.attempts) == (CallStatus.SENT, 2)
    with tenant_context(a.tenant):
        r = Rule.objects.get(pk=hook.pk)
        assert (r.consecutive_failures, r.last_error, r.paused_at) == (0, "", None)


def test_three_failed_calls_pause_the_rule_hold_its_calls_and_resume_releases_them(
    world, hook, httpserver, login
):
    a = world.a
    httpserver.expect_request("/hook").respond_with_response(Response("down", 500))
    for n in range(1, 5):
        enquiry(a, n, model=f"M{n}")
    drain(a)
    assert outcomes(a, hook) == ["fired"] * 4  # the calls fail later, at send
    assert webhooks.send_due(a.tenant) == 3  # the third failure pauses: the fourth is held
    assert len(httpserver.log) == 3
    with tenant_context(a.tenant):
        r = Rule.objects.get(pk=hook.pk)
        assert r.paused_at is not None and r.consecutive_failures == 3
        assert "HTTP 500" in r.last_error
        assert (
            Notification.objects.filter(recipient=a.admin, event="automation.rule_paused").count()
            == 1
        )
    assert [c.status for c in calls(a)] == [CallStatus.FAILED] * 3 + [CallStatus.HELD]
    due_now(a)
    assert webhooks.send_due(a.tenant) == 0  # all held while the rule is paused
    assert [c.status for c in calls(a)] == [CallStatus.HELD] * 4
    enquiry(a, 5, model="M5")
    drain(a)
    assert len(outcomes(a, hook)) == 4  # a paused rule is not evaluated
    # The admin resumes it: the held calls go again.
    httpserver.clear_all_handlers()
    httpserver.expect_request("/hook").respond_with_data("ok")
    response = login(a.admin).post(
        "/admin/automation/rule/",
        {"action": "resume", "_selected_action": [hook.pk]},
    )
    assert response.status_code == 302
    assert webhooks.send_due(a.tenant) == 4
    assert [c.status for c in calls(a)] == [CallStatus.SENT] * 4


def test_a_call_gives_up_after_its_attempts(world, hook, httpserver):
    a = world.a
    httpserver.expect_request("/hook").respond_with_response(Response("down", 500))
    enquiry(a, 1)
    drain(a)
    for _attempt in range(2):
        webhooks.send_due(a.tenant)
        due_now(a)
    with tenant_context(a.tenant):
        Rule.objects.filter(pk=hook.pk).update(consecutive_failures=0)  # not paused yet
    for _attempt in range(3):
        webhooks.send_due(a.tenant)
        due_now(a)
    [call] = calls(a)
    assert (call.status, call.attempts, call.next_attempt_at) == (CallStatus.DEAD, 4, None)


def test_another_tenants_calls_are_not_sent(world, hook, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    enquiry(world.a, 1)
    drain(world.a)
    assert webhooks.send_due(world.b.tenant) == 0
    assert httpserver.log == []
    assert webhooks.send_due(world.a.tenant) == 1
