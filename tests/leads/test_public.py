"""The hosted lead form /f/<key>/ (F1, F7) and its QR code, as a prospect and a bot meet it."""

from __future__ import annotations

import logging
import socket

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from crm.tenancy import tenant_context
from leads.intake.public import HONEYPOT_ERROR, form_url_for_qr, render_qr
from leads.intake.services import inbound_event_process
from leads.models import ChannelType, EventSource, EventStatus, InboundEvent, Lead
from tests.leads.factories import make_channel

VALID = {
    "company": "宁波恒力液压科技有限公司",
    "contact_name": "王工",
    "phone": "139 5741 2286",
    "industry": "manufacturing",
    "message": "需要液压站报价，年底前交货",
    "email": "wang@example.com",
    "title": "采购经理",
    "in_tender": "yes",
    "sample_provided": "no",
}

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # A private in-memory cache: the rate-limit counters must not leak between tests, and
    # clearing the shared Redis would disturb other suites running at the same time.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "lead-form-tests",
        }
    }
    cache.clear()


def _events(tenant):
    with tenant_context(tenant):
        return list(InboundEvent.objects.order_by("id"))


def _leads(tenant):
    with tenant_context(tenant):
        return list(Lead.objects.all())


def test_it_renders_the_form_for_the_public(client, world):
    channel = make_channel(world.a.tenant)
    response = client.get(f"/f/{channel.key}/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("company", "contact_name", "phone", "industry", "message", "email", "title"):
        assert f'name="{name}"' in html
    assert 'name="in_tender"' in html and 'name="sample_provided"' in html
    assert 'name="industry_remark"' in html
    assert "alpha 公司" in html
    assert "<title>" in html and "alpha 公司</title>" in html
    # The honeypot: a text input out of sight, out of the tab order, not autofilled.
    assert 'name="website"' in html
    assert 'tabindex="-1"' in html and 'autocomplete="off"' in html
    assert 'aria-hidden="true"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'data-testid="user-menu"' not in html  # no staff navbar for the public


def test_it_carries_utm_parameters_as_hidden_fields(client, world):
    channel = make_channel(world.a.tenant)
    response = client.get(f"/f/{channel.key}/?utm_source=wechat&utm_campaign=expo2026&x=1")
    html = response.content.decode()
    assert '<input type="hidden" name="utm_source" value="wechat">' in html
    assert '<input type="hidden" name="utm_campaign" value="expo2026">' in html
    assert 'name="x"' not in html


def test_it_turns_a_valid_submission_into_a_lead(client, world):
    channel = make_channel(world.a.tenant)
    url = f"/f/{channel.key}/?utm_source=wechat&utm_campaign=expo2026"

    response = client.post(url, VALID, REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 303
    assert response["Location"] == f"/f/{channel.key}/?sent=1"
    [event] = _events(world.a.tenant)
    assert event.source == EventSource.FORM
    assert event.status == EventStatus.RECEIVED
    assert event.channel_id == channel.pk
    assert event.payload["phone"] == "+8613957412286"
    assert event.payload["in_tender"] is True and event.payload["sample_provided"] is False
    assert "csrfmiddlewaretoken" not in event.payload
    assert event.headers["REMOTE_ADDR"] == "203.0.113.7"

    with tenant_context(world.a.tenant):
        inbound_event_process(event_id=event.pk)
    [lead] = _leads(world.a.tenant)
    assert lead.company == "宁波恒力液压科技有限公司"
    assert lead.contact_name == "王工"
    assert lead.phone == "+8613957412286"
    assert lead.industry == "manufacturing"
    assert lead.industry_remark == ""
    assert lead.message == "需要液压站报价，年底前交货"
    assert lead.email == "wang@example.com"
    assert lead.title == "采购经理"
    assert lead.in_tender is True
    assert lead.sample_provided is False
    assert lead.utm == {"utm_source": "wechat", "utm_campaign": "expo2026"}
    assert lead.channel_id == channel.pk
    assert not lead.is_suspect

    thanks = client.get(response["Location"])
    assert thanks.status_code == 200
    assert 'data-testid="form-thanks"' in thanks.content.decode()


def test_it_takes_utm_from_the_hidden_fields_and_leaves_unknown_facts_out(client, world):
    channel = make_channel(world.a.tenant)
    data = {
        **VALID,
        "industry": "other",
        "industry_remark": "医疗器械",
        "in_tender": "",
        "sample_provided": "",
        "email": "",
        "utm_medium": "menu",
    }
    response = client.post(f"/f/{channel.key}/", data)
    assert response.status_code == 303
    [event] = _events(world.a.tenant)
    assert event.payload["industry_remark"] == "医疗器械"
    assert event.payload["utm_medium"] == "menu"
    assert not {"in_tender", "sample_provided", "email"} & set(event.payload)
    with tenant_context(world.a.tenant):
        inbound_event_process(event_id=event.pk)
    [lead] = _leads(world.a.tenant)
    assert (lead.industry, lead.industry_remark) == ("other", "医疗器械")
    assert lead.in_tender is None and lead.sample_provided is None
    assert lead.utm == {"utm_medium": "menu"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"company": ""}, "company"),
        ({"contact_name": ""}, "contact_name"),
        ({"industry": ""}, "industry"),
        ({"message": ""}, "message"),
        ({"phone": ""}, "phone"),
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_it_shows_field_errors_and_stores_nothing(client, world, change, field):
    channel = make_channel(world.a.tenant)
    response = client.post(f"/f/{channel.key}/", {**VALID, **change})
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    html = response.content.decode()
    assert "invalid-feedback" in html and "is-invalid" in html
    assert 'value="采购经理"' in html  # what was typed stays
    assert _events(world.a.tenant) == []


def test_it_explains_a_phone_that_does_not_parse(client, world):
    channel = make_channel(world.a.tenant)
    response = client.post(f"/f/{channel.key}/", {**VALID, "phone": "0000"})
    # The example numbers are in the message whatever the page's language.
    assert "138 1234 5678" in response.context["form"].errors["phone"][0]


def test_it_pretends_success_to_a_bot_and_keeps_the_submission_as_failed(client, world):
    channel = make_channel(world.a.tenant)
    response = client.post(
        f"/f/{channel.key}/", {**VALID, "website": "http://spam.example"}, follow=True
    )
    assert response.redirect_chain == [(f"/f/{channel.key}/?sent=1", 303)]
    assert 'data-testid="form-thanks"' in response.content.decode()
    [event] = _events(world.a.tenant)
    assert event.source == EventSource.FORM
    assert event.status == EventStatus.FAILED
    assert event.error == HONEYPOT_ERROR == "honeypot field filled (spam)"
    assert event.payload["website"] == "http://spam.example"
    with tenant_context(world.a.tenant):
        assert inbound_event_process(event_id=event.pk) is None  # never queued, never a lead
    assert _leads(world.a.tenant) == []


def test_it_pretends_success_to_a_bot_even_with_invalid_fields(client, world):
    channel = make_channel(world.a.tenant)
    response = client.post(f"/f/{channel.key}/", {"website": "x", "phone": "1"})
    assert response.status_code == 303
    [event] = _events(world.a.tenant)
    assert event.status == EventStatus.FAILED


def test_it_limits_submissions_per_ip_and_channel(client, world, settings):
    settings.LEAD_FORM_RATE_LIMIT = 2
    cache.clear()
    channel = make_channel(world.a.tenant)
    url = f"/f/{channel.key}/"
    for n in range(2):
        response = client.post(url, {**VALID, "message": f"第{n}次"}, REMOTE_ADDR="198.51.100.9")
        assert response.status_code == 303
    assert len(_events(world.a.tenant)) == 2

    response = client.post(url, {**VALID, "message": "第3次"}, REMOTE_ADDR="198.51.100.9")

    assert response.status_code == 429
    html = response.content.decode()
    assert 'data-testid="rate-limited"' in html
    assert 'value="宁波恒力液压科技有限公司"' in html  # the typed values are not lost
    assert len(_events(world.a.tenant)) == 2
    # Another IP, or the same IP on another channel, is counted on its own.
    other = make_channel(world.a.tenant, name="展会二维码", type=ChannelType.TRADE_SHOW_QR)
    assert client.post(url, VALID, REMOTE_ADDR="198.51.100.10").status_code == 303
    assert client.post(f"/f/{other.key}/", VALID, REMOTE_ADDR="198.51.100.9").status_code == 303


# Ports held bound and never listened on for the whole run: a connection to one is refused.
# (A port bound and released at once may be taken by another process meanwhile.)
_HELD: list[socket.socket] = []


def _unreachable_cache(settings):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    port = s.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }


def test_with_the_cache_down_it_limits_by_the_stored_submissions(
    client, world, settings, caplog, monkeypatch
):
    # The warning is read at its own logger: an earlier test in the same process (a Celery
    # worker's logging setup) may have left the logger disabled or the root without
    # caplog's handler reaching it.
    public_logger = logging.getLogger("leads.intake.public")
    monkeypatch.setattr(public_logger, "disabled", False)
    monkeypatch.setattr(public_logger, "handlers", [*public_logger.handlers, caplog.handler])
    settings.LEAD_FORM_RATE_LIMIT = 2
    _unreachable_cache(settings)
    channel = make_channel(world.a.tenant)
    url = f"/f/{channel.key}/"
    for n in range(2):
        response = client.post(url, {**VALID, "message": f"第{n}次"}, REMOTE_ADDR="198.51.100.9")
        assert response.status_code == 303  # the visitor is thanked, not shown a 500
    assert len(_events(world.a.tenant)) == 2
    assert "cache unavailable" in caplog.text

    response = client.post(url, {**VALID, "message": "第3次"}, REMOTE_ADDR="198.51.100.9")

    assert response.status_code == 429
    assert len(_events(world.a.tenant)) == 2
    assert client.post(url, VALID, REMOTE_ADDR="198.51.100.10").status_code == 303


def test_with_the_cache_down_behind_the_proxy_it_counts_the_forwarded_address(
    client, world, settings
):
    settings.LEAD_FORM_RATE_LIMIT = 1
    settings.TRUST_X_FORWARDED_FOR = True
    _unreachable_cache(settings)
    channel = make_channel(world.a.tenant)
    url = f"/f/{channel.key}/"
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    sent = client.post(url, VALID, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    assert sent.status_code == 303
    again = {**VALID, "message": "再次询价"}
    assert client.post(url, again, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 429
    # A forged first address does not dodge it; another visitor behind the proxy is free.
    forged = "1.2.3.4, 203.0.113.7"
    assert client.post(url, again, HTTP_X_FORWARDED_FOR=forged, **proxy).status_code == 429
    assert client.post(url, again, HTTP_X_FORWARDED_FOR="203.0.113.8", **proxy).status_code == 303


def test_it_counts_invalid_and_bot_posts_against_the_limit(client, world, settings):
    settings.LEAD_FORM_RATE_LIMIT = 2
    channel = make_channel(world.a.tenant)
    url = f"/f/{channel.key}/"
    assert client.post(url, {"phone": "1"}).status_code == 200
    assert client.post(url, {**VALID, "website": "x"}).status_code == 303
    assert client.post(url, VALID).status_code == 429
    assert [e.status for e in _events(world.a.tenant)] == [EventStatus.FAILED]


def test_it_refuses_a_post_without_the_csrf_token(world):
    channel = make_channel(world.a.tenant)
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(f"/f/{channel.key}/", VALID).status_code == 403
    assert _events(world.a.tenant) == []

    # The page sets the token cookie, and posting it back works.
    page = browser.get(f"/f/{channel.key}/")
    token = page.context["csrf_token"]
    response = browser.post(f"/f/{channel.key}/", {**VALID, "csrfmiddlewaretoken": token})
    assert response.status_code == 303
    assert len(_events(world.a.tenant)) == 1


@pytest.mark.parametrize("path", ["/f/no-such-key/", "/f/no-such-key/qr.svg"])
def test_it_answers_an_unknown_key_with_a_friendly_404(client, world, path):
    response = client.get(path)
    assert response.status_code == 404
    assert 'data-testid="form-unavailable"' in response.content.decode()
    assert client.post("/f/no-such-key/", VALID).status_code == 404


def test_it_answers_an_inactive_channel_with_404_and_stores_nothing(client, world):
    channel = make_channel(world.a.tenant, is_active=False)
    assert client.get(f"/f/{channel.key}/").status_code == 404
    assert client.post(f"/f/{channel.key}/", VALID).status_code == 404
    assert client.get(f"/f/{channel.key}/qr.png").status_code == 404
    assert _events(world.a.tenant) == []


def test_it_offers_no_form_for_channels_that_speak_their_own_protocol(client, world):
    channel = make_channel(world.a.tenant, type=ChannelType.SMS, preset="sms")
    assert client.get(f"/f/{channel.key}/").status_code == 404
    wechat = make_channel(world.a.tenant, type=ChannelType.WECHAT_OA)
    assert client.get(f"/f/{wechat.key}/").status_code == 200


def test_it_keeps_the_data_in_the_channels_tenant(login, world):
    channel = make_channel(world.a.tenant)
    # Even posted by a signed-in member of tenant B (whose request runs as B).
    client = login(world.b.admin)
    assert client.post(f"/f/{channel.key}/", VALID).status_code == 303
    [event] = _events(world.a.tenant)
    assert event.tenant_id == world.a.tenant.pk
    assert _events(world.b.tenant) == []
    with tenant_context(world.a.tenant):
        inbound_event_process(event_id=event.pk)
    assert len(_leads(world.a.tenant)) == 1
    assert _leads(world.b.tenant) == []


def test_it_serves_the_qr_code_as_svg_and_png(client, world):
    channel = make_channel(world.a.tenant, type=ChannelType.TRADE_SHOW_QR)

    svg = client.get(f"/f/{channel.key}/qr.svg")
    assert svg.status_code == 200
    assert svg["Content-Type"] == "image/svg+xml"
    assert svg.content.startswith(b"<?xml") and b"<svg" in svg.content
    assert svg.content == render_qr(f"http://testserver/f/{channel.key}/", "svg")

    png = client.get(f"/f/{channel.key}/qr.png")
    assert png.status_code == 200
    assert png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png["Content-Disposition"].startswith('inline; filename="lead-form-')
    assert png["Content-Disposition"].endswith('.png"')
    assert "public" in png["Cache-Control"] and "max-age=3600" in png["Cache-Control"]


def test_it_bakes_the_campaign_into_the_qr_code(client, world):
    channel = make_channel(world.a.tenant)
    response = client.get(f"/f/{channel.key}/qr.svg?utm_campaign=expo2026&utm_source=booth&x=1")
    expected = f"http://testserver/f/{channel.key}/?utm_source=booth&utm_campaign=expo2026"
    assert response.content == render_qr(expected, "svg")
    assert b"expo2026" in response.content  # the SVG's title names the URL too
    assert "expo2026" in response["Content-Disposition"]

    request = RequestFactory().get("/")
    assert form_url_for_qr(request, "k", {"utm_campaign": "expo2026", "next": "/x"}) == (
        "http://testserver/f/k/?utm_campaign=expo2026"
    )
    assert form_url_for_qr(request, "k", {}) == "http://testserver/f/k/"


def test_it_knows_only_svg_and_png(client, world):
    channel = make_channel(world.a.tenant)
    assert client.get(f"/f/{channel.key}/qr.gif").status_code == 404


def test_length_limits_are_field_errors_never_a_silent_cut(client, world):
    channel = make_channel(world.a.tenant)
    page = client.get(f"/f/{channel.key}/").content.decode()
    # A maxlength attribute makes browsers drop a pasted text's tail without a word.
    assert "maxlength" not in page

    response = client.post(
        f"/f/{channel.key}/",
        {**VALID, "contact_name": "王" * 300, "message": "需" * 48_000},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"contact_name", "message"}
    assert form.errors["contact_name"] == ["最多 100 个字符：现在有 300 个。"]
    assert form.errors["message"] == ["最多 2000 个字符：现在有 48000 个。"]
    html = response.content.decode()
    assert "最多 100 个字符：现在有 300 个。" in html and 'class="form-control' in html
    assert _events(world.a.tenant) == []

    # Within the limits it goes through.
    response = client.post(
        f"/f/{channel.key}/", {**VALID, "contact_name": "王" * 100, "message": "需" * 2000}
    )
    assert response.status_code == 303
    [event] = _events(world.a.tenant)
    assert len(event.payload["contact_name"]) == 100 and len(event.payload["message"]) == 2000
