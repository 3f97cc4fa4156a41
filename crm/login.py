"""Log-in abuse. django-axes locks a username at one visitor address (AXES_LOCKOUT_PARAMETERS,
the address from crm.http.client_ip), so a guesser at one address cannot lock the user out
elsewhere. A guesser spread over many addresses is slowed per username here: past
LOGIN_SLOWDOWN_AFTER failures within the window, from any address, an attempt for that
username is checked only once a growing delay has passed since its last failure; earlier
ones are refused at once (429, Retry-After) without looking at the password, and are not
counted as failures. The counts are axes' failure log in the database (not Redis).
"""

from __future__ import annotations

import math
import unicodedata
from datetime import timedelta

from axes.models import AccessFailureLog
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import ngettext

from crm.tenancy import advisory_lock


def slowdown_delay(failures: int) -> int:
    """Seconds an attempt waits after the last failure, with `failures` in the window."""
    over = failures - settings.LOGIN_SLOWDOWN_AFTER + 1
    if over < 1:
        return 0
    delay = settings.LOGIN_SLOWDOWN_BASE_SECONDS * 2 ** min(over - 1, 20)
    return min(delay, settings.LOGIN_SLOWDOWN_MAX_SECONDS)


def retry_after(username: str, now=None) -> int:
    """Seconds before an attempt for `username` is checked again; 0: it is checked now."""
    if not username:
        return 0
    now = now or timezone.now()
    since = now - timedelta(minutes=settings.LOGIN_SLOWDOWN_WINDOW_MINUTES)
    recent = AccessFailureLog.objects.filter(username=username, attempt_time__gte=since)
    stats = recent.aggregate(failures=Count("id"), last=Max("attempt_time"))
    delay = slowdown_delay(stats["failures"])
    if not delay:
        return 0
    wait = (stats["last"] + timedelta(seconds=delay) - now).total_seconds()
    return max(0, math.ceil(wait))


class LoginForm(AuthenticationForm):
    """The one log-in form (the admin's sends here): a slowed-down username is refused
    before it is authenticated."""

    def clean(self):
        wait = retry_after(self.cleaned_data.get("username") or "")
        if wait:
            if self.request is not None:
                self.request.login_retry_after = wait
            raise ValidationError(
                ngettext(
                    "Too many attempts; try again in %(seconds)d second.",
                    "Too many attempts; try again in %(seconds)d seconds.",
                    wait,
                )
                % {"seconds": wait},
                code="slowed_down",
            )
        return super().clean()


class LoginView(auth_views.LoginView):
    form_class = LoginForm

    def post(self, request, *args, **kwargs):
        # One attempt per username at a time: parallel attempts the moment a delay is over
        # would all be checked; in turn, each sees the failure of the one before.
        username = unicodedata.normalize("NFKC", request.POST.get("username", ""))
        with transaction.atomic():
            advisory_lock("login", username)
            return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        wait = getattr(self.request, "login_retry_after", 0)
        if wait:
            response.status_code = 429
            response["Retry-After"] = str(wait)
        return response
