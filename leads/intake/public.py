"""The hosted lead form (F1, F7): /f/<channel_key>/, the page WeChat official-account
menus, websites and trade-show QR codes point at, and its QR code.

Public: no log-in, found by the channel's unguessable key. CSRF applies as usual (the
page is rendered before it is posted, which sets the token cookie). Submissions go into
the inbox exactly like webhook payloads; the pipeline turns them into leads.

Redis down does not lose a visitor: the form needs no session, the rate limit falls back
to counting stored submissions, and a failed publish leaves the stored event to the
re-drive sweep. PostgreSQL down answers the 503 page (crm/outage.py).
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods, require_safe
from kombu.exceptions import OperationalError as BrokerError

from crm.http import client_ip
from crm.tenancy import tenant_context
from leads.access import channel_by_key
from leads.intake.forms import HONEYPOT, LeadFormSubmission, utm_from
from leads.intake.hooks import kept_headers
from leads.intake.services import inbound_event_receive
from leads.messages import intake_message
from leads.models import Channel, ChannelType, EventSource, InboundEvent

# Channels whose leads come in through this form; the others speak their own protocols.
FORM_CHANNEL_TYPES = (ChannelType.WEB_FORM, ChannelType.WECHAT_OA, ChannelType.TRADE_SHOW_QR)
RATE_WINDOW = 10 * 60  # seconds
HONEYPOT_ERROR = "honeypot field filled (spam)"
QR_FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
# While the cache is down the limit counts the IP's stored submissions instead; at most
# this many of the channel's latest are read.
FALLBACK_SCAN = 2000

logger = logging.getLogger(__name__)


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def _form_channel(key: str) -> Channel | None:
    channel = channel_by_key(key)
    if channel is None or channel.type not in FORM_CHANNEL_TYPES:
        return None
    return channel


def _unavailable(request: HttpRequest) -> HttpResponse:
    return render(request, "leads/form_unavailable.html", status=404)


def _over_rate_limit(request: HttpRequest, channel: Channel) -> bool:
    """Count this POST; True once the IP has sent more than the limit to the channel in
    the window (the window starts with the IP's first POST).

    The counter lives in the cache (Redis). When the cache cannot be reached the form does
    not fail: the limit is then checked against the submissions PostgreSQL holds."""
    ip = client_ip(request)
    cache_key = f"leadform:{channel.key}:{ip}"
    try:
        cache.add(cache_key, 0, timeout=RATE_WINDOW)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, 1, timeout=RATE_WINDOW)
            count = 1
    except Exception as exc:
        logger.warning(
            "lead form rate limit: cache unavailable (%s: %s), counting stored submissions",
            exc.__class__.__name__,
            exc,
        )
        return _stored_from(ip, channel) >= settings.LEAD_FORM_RATE_LIMIT
    return count > settings.LEAD_FORM_RATE_LIMIT


def _stored_from(ip: str, channel: Channel) -> int:
    """The form submissions from `ip` that the channel stored in the last window (the
    address as crm.http.client_ip reads it, from the headers kept with each event)."""
    since = timezone.now() - timedelta(seconds=RATE_WINDOW)
    with tenant_context(channel.tenant):
        recent = InboundEvent.objects.filter(
            channel=channel, source=EventSource.FORM, received_at__gte=since
        ).values_list("headers", flat=True)[:FALLBACK_SCAN]
        return sum(1 for headers in recent if client_ip(SimpleNamespace(META=headers)) == ip)


def _page_context(request: HttpRequest, channel: Channel) -> dict:
    """base.html titles the page with `current_tenant`: the channel's tenant for the public;
    a signed-in member previewing the form keeps their own, which the navbar shows."""
    context = {"channel": channel, "tenant": channel.tenant}
    if not request.user.is_authenticated:
        context["current_tenant"] = channel.tenant
    return context


def _page(request, channel, form, utm, *, status=200, rate_limited=False) -> HttpResponse:
    context = {
        **_page_context(request, channel),
        "form": form,
        "utm": utm,
        "honeypot": HONEYPOT,
        "rate_limited": rate_limited,
    }
    return render(request, "leads/form.html", context, status=status)


def _receive(request: HttpRequest, channel: Channel, payload: dict, error: str = "") -> None:
    try:
        with tenant_context(channel.tenant):
            inbound_event_receive(
                channel=channel,
                raw_body=json.dumps(payload, ensure_ascii=False).encode(),
                source=EventSource.FORM,
                payload=payload,
                headers=kept_headers(request),
                error=error,
                error_detail=intake_message("honeypot") if error == HONEYPOT_ERROR else None,
            )
    except BrokerError as exc:
        # Only the publish after the commit talks to the broker: the submission is stored,
        # and the re-drive sweep queues it once the broker is back. The visitor is thanked.
        logger.warning("lead form: stored, but queueing failed (%s); left to the re-drive", exc)


@login_not_required
@xframe_options_exempt  # customers embed the form in their own website (官网 H5 表单)
@require_http_methods(["GET", "HEAD", "POST"])
def lead_form(request: HttpRequest, key: str) -> HttpResponse:
    channel = _form_channel(key)
    if channel is None:
        return _unavailable(request)
    if request.method != "POST":
        if request.GET.get("sent"):
            return render(request, "leads/form_thanks.html", _page_context(request, channel))
        return _page(request, channel, LeadFormSubmission(), utm_from(request.GET))

    # Hidden fields carry the page's UTM parameters; the query string is the fallback.
    utm = utm_from(request.POST) or utm_from(request.GET)
    if _over_rate_limit(request, channel):
        # Nothing stored; the typed values stay on the page for a later try.
        form = LeadFormSubmission(initial=request.POST.dict())
        return _page(request, channel, form, utm, status=429, rate_limited=True)
    form = LeadFormSubmission(request.POST)
    if form.honeypot_filled:
        # Look like a success to the bot; keep the submission for an admin to see.
        payload = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        _receive(request, channel, payload, error=HONEYPOT_ERROR)
    elif form.is_valid():
        _receive(request, channel, form.to_payload(utm))
    else:
        return _page(request, channel, form, utm)
    return HttpResponseSeeOther(request.path + "?sent=1")


def form_url_for_qr(request: HttpRequest, key: str, params) -> str:
    """The absolute form URL a QR code encodes, with the utm_* of `params` baked in."""
    url = request.build_absolute_uri(reverse("lead_form", args=[key]))
    utm = utm_from(params)
    return f"{url}?{urlencode(utm)}" if utm else url


def render_qr(url: str, fmt: str) -> bytes:
    """A QR code of `url` for print: SVG (vector) or PNG at 10 px a module."""
    qr = segno.make_qr(url, error="m")
    out = io.BytesIO()
    if fmt == "svg":
        qr.save(out, kind="svg", scale=4, border=4, xmldecl=True, title=url)
    else:
        qr.save(out, kind="png", scale=10, border=4)
    return out.getvalue()


@login_not_required
@require_safe
def lead_form_qr(request: HttpRequest, key: str, fmt: str) -> HttpResponse:
    if fmt not in QR_FORMATS:
        return _unavailable(request)
    channel = _form_channel(key)
    if channel is None:
        return _unavailable(request)
    url = form_url_for_qr(request, channel.key, request.GET)
    response = HttpResponse(render_qr(url, fmt), content_type=QR_FORMATS[fmt])
    campaign = utm_from(request.GET).get("utm_campaign", "")
    suffix = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in campaign)
    name = f"lead-form-{channel.key[:8]}{'-' + suffix if suffix else ''}.{fmt}"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    patch_cache_control(response, public=True, max_age=3600)
    return response
