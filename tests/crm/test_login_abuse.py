"""Log-in abuse (issue 11 item 6): locks keyed on the visitor's real address and the
username together, and a per-username slow-down for a guesser spread over many addresses."""

import ipaddress
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm.login import retry_after, slowdown_delay

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"
RIGHT = settings.DEMO_PASSWORD


def _attempt(client, password, *, remote=PROXY, forwarded=None, username="alpha-rep"):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


@pytest.fixture
def behind_proxy(settings):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = []


def test_behind_the_proxy_a_lock_holds_one_visitor_not_the_user(client, world, behind_proxy):
    for _ in range(5):
        assert _attempt(client, "wrong", forwarded="198.51.100.7").status_code in (200, 429)
    locked = _attempt(client, RIGHT, forwarded="198.51.100.7")
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.text
    # The lock is on the visitor's address, not the proxy's that every request comes from.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}

    elsewhere = _attempt(client, RIGHT, forwarded="203.0.113.40")
    assert elsewhere.status_code == 302
    assert client.session["_auth_user_id"] == str(world.a.rep.user_id)


def test_a_lock_at_one_address_is_for_that_username_only(client, world, behind_proxy):
    for _ in range(5):
        _attempt(client, "wrong", forwarded="198.51.100.7")
    other_user = _attempt(client, RIGHT, forwarded="198.51.100.7", username="alpha-mgr")
    assert other_user.status_code == 302


def test_without_a_trusted_proxy_a_forged_forwarded_for_is_ignored(client, world, settings):
    settings.TRUST_X_FORWARDED_FOR = False
    for n in range(5):
        _attempt(client, "wrong", remote="203.0.113.5", forwarded=f"198.51.100.{n + 1}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    forged_fresh_address = _attempt(client, RIGHT, remote="203.0.113.5", forwarded="192.0.2.99")
    assert forged_fresh_address.status_code == 429

    assert _attempt(client, RIGHT, remote="203.0.113.6").status_code == 302


def test_a_request_that_did_not_come_through_a_listed_proxy_is_taken_at_its_address(
    client, world, settings
):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    for n in range(5):
        _attempt(client, "wrong", remote="203.0.113.5", forwarded=f"198.51.100.{n + 1}")
    assert _attempt(client, RIGHT, remote="203.0.113.5", forwarded="192.0.2.99").status_code == 429
    # Through the proxy, the visitor's own address counts.
    assert _attempt(client, RIGHT, remote="10.1.2.3", forwarded="192.0.2.99").status_code == 302


def _guess_from_many_addresses(client, count, start=1):
    return [
        _attempt(client, "wrong", forwarded=f"198.51.100.{n}") for n in range(start, start + count)
    ]


def test_one_address_hammering_a_locked_user_does_not_slow_them_elsewhere(
    client, world, behind_proxy, settings
):
    for _ in range(settings.LOGIN_SLOWDOWN_AFTER + 10):
        _attempt(client, "wrong", forwarded="198.51.100.7")
    # Only the checked guesses are failures; the refused ones neither count nor extend the lock.
    assert AccessFailureLog.objects.count() == settings.AXES_FAILURE_LIMIT
    assert retry_after("alpha-rep") == 0
    assert _attempt(client, RIGHT, forwarded="203.0.113.40").status_code == 302


def test_guesses_spread_over_many_addresses_are_slowed_per_username(
    client, world, behind_proxy, settings
):
    # The first delay as long as the longest: nothing here depends on how fast requests run.
    settings.LOGIN_SLOWDOWN_BASE_SECONDS = 60
    responses = _guess_from_many_addresses(client, settings.LOGIN_SLOWDOWN_AFTER)
    assert [r.status_code for r in responses] == [200] * settings.LOGIN_SLOWDOWN_AFTER
    failures = AccessFailureLog.objects.filter(username="alpha-rep")
    assert failures.count() == settings.LOGIN_SLOWDOWN_AFTER

    for n in range(100, 110):  # ten more addresses: refused at once, none counted
        refused = _attempt(client, "wrong", forwarded=f"198.51.100.{n}")
        assert refused.status_code == 429
        assert 0 < int(refused["Retry-After"]) <= 60
        assert "尝试次数过多，请" in refused.text and "秒后再试" in refused.text
    assert failures.count() == settings.LOGIN_SLOWDOWN_AFTER

    # Even the right password is not looked at before the delay has passed.
    refused = _attempt(client, RIGHT, forwarded="203.0.113.40")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session

    # Another user is not slowed.
    assert (
        _attempt(client, RIGHT, forwarded="198.51.100.1", username="alpha-mgr").status_code == 302
    )
    client.logout()

    # The delay has passed (the failures are a minute older): the right password works.
    failures.update(attempt_time=timezone.now() - timedelta(seconds=61))
    accepted = _attempt(client, RIGHT, forwarded="203.0.113.40")
    assert accepted.status_code == 302
    assert client.session["_auth_user_id"] == str(world.a.rep.user_id)


def test_a_checked_wrong_guess_after_the_delay_makes_the_next_delay_longer(
    client, world, behind_proxy, settings
):
    settings.LOGIN_SLOWDOWN_BASE_SECONDS = 60
    settings.LOGIN_SLOWDOWN_MAX_SECONDS = 3600
    _guess_from_many_addresses(client, settings.LOGIN_SLOWDOWN_AFTER)
    failures = AccessFailureLog.objects.filter(username="alpha-rep")
    failures.update(attempt_time=timezone.now() - timedelta(seconds=61))

    checked = _attempt(client, "wrong", forwarded="198.51.100.200")
    assert checked.status_code == 200  # checked, and wrong
    assert failures.count() == settings.LOGIN_SLOWDOWN_AFTER + 1
    refused = _attempt(client, RIGHT, forwarded="203.0.113.40")
    assert refused.status_code == 429
    assert 60 < int(refused["Retry-After"]) <= 120


def test_failures_outside_the_window_do_not_count(client, world, behind_proxy, settings):
    settings.LOGIN_SLOWDOWN_BASE_SECONDS = 60
    _guess_from_many_addresses(client, settings.LOGIN_SLOWDOWN_AFTER)
    window = timedelta(minutes=settings.LOGIN_SLOWDOWN_WINDOW_MINUTES)
    AccessFailureLog.objects.update(attempt_time=timezone.now() - window - timedelta(minutes=1))
    assert retry_after("alpha-rep") == 0
    assert _attempt(client, RIGHT, forwarded="203.0.113.40").status_code == 302


def test_the_delay_doubles_up_to_the_ceiling(settings):
    settings.LOGIN_SLOWDOWN_AFTER = 20
    settings.LOGIN_SLOWDOWN_BASE_SECONDS = 2
    settings.LOGIN_SLOWDOWN_MAX_SECONDS = 60
    assert [slowdown_delay(n) for n in (0, 19, 20, 21, 22, 23, 24, 25, 1000)] == [
        0,
        0,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]


def test_the_slow_down_message_is_english_too(client, world, behind_proxy, settings):
    settings.LOGIN_SLOWDOWN_BASE_SECONDS = 60
    _guess_from_many_addresses(client, settings.LOGIN_SLOWDOWN_AFTER)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    refused = _attempt(client, "wrong", forwarded="198.51.100.150")
    assert refused.status_code == 429
    assert "Too many attempts; try again in" in refused.text


def test_the_slow_down_works_with_redis_down(client, world, behind_proxy, settings):
    closed_port = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": closed_port,
        }
    }
    settings.LOGIN_SLOWDOWN_BASE_SECONDS = 60
    _guess_from_many_addresses(client, settings.LOGIN_SLOWDOWN_AFTER)
    assert _attempt(client, RIGHT, forwarded="203.0.113.40").status_code == 429
    AccessFailureLog.objects.update(attempt_time=timezone.now() - timedelta(seconds=61))
    assert _attempt(client, RIGHT, forwarded="203.0.113.40").status_code == 302
