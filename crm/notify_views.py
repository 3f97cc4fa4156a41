"""Notification screens (F44): the navbar bell, the member's list, their preferences."""

from __future__ import annotations

import re
import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.validators import RegexValidator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.models import Membership, Notification, NotificationPreference
from crm.notify import ALL_KINDS, CHANNEL_KINDS, IN_APP, configured_channels, event_types_for

PER_PAGE = 50


def _member(request: HttpRequest) -> Membership:
    if request.membership is None:
        raise PermissionDenied(_("Notifications are for members of a tenant."))
    return request.membership


def _own(request: HttpRequest):
    return Notification.objects.filter(recipient=_member(request))


@never_cache
@require_GET
def bell(request: HttpRequest) -> HttpResponse:
    """The navbar's bell with the unread count (an htmx fragment, polled)."""
    unread = 0
    if request.membership is not None:
        unread = _own(request).filter(read_at__isnull=True).count()
    return TemplateResponse(request, "crm/notifications_bell.html", {"unread": unread})


@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    own = _own(request)
    page = Paginator(own.order_by("-created_at", "-id"), PER_PAGE).get_page(request.GET.get("page"))
    unread = own.filter(read_at__isnull=True).count()
    return TemplateResponse(request, "crm/notifications.html", {"page": page, "unread": unread})


@require_GET
def notification_open(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Mark one of the member's notifications read and follow its link."""
    notification = _own(request).filter(public_id=public_id).first()
    if notification is None:
        raise Http404("No such notification.")
    if notification.read_at is None:
        _own(request).filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now()
        )
    target = notification.link
    if not target or not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        target = reverse("notifications")
    return redirect(target)


@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    count = _own(request).filter(read_at__isnull=True).update(read_at=timezone.now())
    if count:
        messages.success(request, _("All notifications marked read."))
    return redirect("notifications")


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=gettext_lazy("Mobile number"),
        required=False,
        max_length=32,
        validators=[
            RegexValidator(
                r"^\+?[\d\s-]{5,24}$",
                gettext_lazy("Enter digits only, with an optional leading +."),
            )
        ],
        help_text=gettext_lazy("For text messages, and for @-mentions by the group robots."),
    )

    def clean_phone(self) -> str:
        return re.sub(r"[\s-]", "", self.cleaned_data["phone"])


def _ordered(kinds) -> list[str]:
    kinds = set(kinds)
    return [k for k in ALL_KINDS if k in kinds]


@require_http_methods(["GET", "POST"])
def notification_preferences(request: HttpRequest) -> HttpResponse:
    """Which events reach the member on which channels, and their mobile number."""
    member = _member(request)
    events = event_types_for(member.role)
    available = {IN_APP, *configured_channels()}
    stored = dict(
        NotificationPreference.objects.filter(membership=member).values_list("event", "channels")
    )

    if request.method == "POST":
        form = PhoneForm(request.POST)
        if form.is_valid():
            for event in events:
                posted = set(request.POST.getlist(f"event:{event.key}"))
                before = set(stored.get(event.key, event.default_channels))
                # Always in-app; keep a choice whose channel is not set up now (its box is
                # disabled, so not posted) for when the admin sets it up again.
                chosen = _ordered({IN_APP} | (posted & available) | (before - available))
                if chosen == _ordered({IN_APP, *event.default_channels}):
                    NotificationPreference.objects.filter(
                        membership=member, event=event.key
                    ).delete()
                else:
                    NotificationPreference.objects.update_or_create(
                        tenant=request.tenant,
                        membership=member,
                        event=event.key,
                        defaults={"channels": chosen},
                    )
            member.phone = form.cleaned_data["phone"]
            Membership.objects.filter(pk=member.pk).update(phone=member.phone)
            messages.success(request, _("Your notification settings are saved."))
            return redirect("notification_preferences")
    else:
        form = PhoneForm(initial={"phone": member.phone})

    rows = []
    for event in events:
        current = set(stored.get(event.key, event.default_channels)) | {IN_APP}
        rows.append(
            {
                "event": event,
                "cells": [
                    {
                        "kind": kind,
                        "label": label,
                        "checked": kind in current,
                        "available": kind in available,
                        "locked": kind == IN_APP,
                    }
                    for kind, label in CHANNEL_KINDS
                ],
            }
        )
    context = {
        "form": form,
        "rows": rows,
        "kinds": CHANNEL_KINDS,
        "available": available,
        "email": request.user.email,
    }
    return TemplateResponse(request, "crm/notification_preferences.html", context)
