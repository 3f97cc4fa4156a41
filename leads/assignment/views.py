"""The assignment pages (F10–F13): a manager's reassignment and return to the pool and the
owner's record of a contact (posted from the lead's page, leads.assignment.lead_card), and
the rep's own pages: my profile, "why did I not get it", the observation zone's training
card. The URLs are the leads app's (leads/urls.py: `leads:reassign`, `leads:why_not` …).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from crm import normalize, roles
from crm.tenancy import tenant_today
from leads.access import access_lead
from leads.assignment import explain, explain_texts
from leads.assignment.dispatch import lead_reassign, lead_return_to_pool
from leads.assignment.engine import AT_CAPACITY, OK, PAUSED, Params
from leads.assignment.lead_card import OPEN_STATUSES, PoolForm, ReassignForm, TouchForm
from leads.assignment.policy import policy_published
from leads.assignment.reps import rep_load
from leads.assignment.zones import lead_record_touch, training_acknowledge
from leads.models import (
    AssignmentDecision,
    Industry,
    Lead,
    PoolReason,
    RepLedgerDay,
    RepProfile,
    Zone,
    profile_of,
)
from leads.views import lead_membership, render_lead_page, timeline_context

# -- a manager's hand-overs and the owner's contacts, posted from the lead's page ------------


def _managed_lead(request: HttpRequest, public_id) -> tuple:
    """(membership, lead locked for the change): 404 for a lead the member cannot see,
    then 403 unless a manager or admin."""
    membership = lead_membership(request)
    lead = access_lead(membership, public_id)
    if membership.role not in roles.ASSIGNERS:
        raise PermissionDenied(_("Only managers and admins assign leads by hand."))
    return membership, _locked(lead)


def _locked(lead: Lead) -> Lead:
    """The lead again, its row locked until the request's transaction ends (the worker and
    the SLA sweep change leads too)."""
    return (
        Lead.objects.select_for_update(of=("self",))
        .select_related("channel", "owner__user", "revisit_of", "tenant")
        .get(pk=lead.pk)
    )


@require_POST
def lead_reassign_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A manager gives the lead (assigned, waiting or pooled) to a rep of their choosing."""
    membership, lead = _managed_lead(request, public_id)
    form = ReassignForm(request.POST, tenant=membership.tenant, owner_id=lead.owner_id)
    if lead.status not in OPEN_STATUSES:
        form.add_error(None, _("Only new and assigned leads can be handed out."))
    if not form.is_valid():
        return render_lead_page(request, membership, lead, status=400, reassign_form=form)
    target = form.cleaned_data["to"]
    lead_reassign(
        tenant=lead.tenant,
        acting_member=membership,
        lead=lead,
        to=target,
        reason=form.cleaned_data["reason"].strip(),
    )
    messages.success(request, _("The lead is now with %(owner)s.") % {"owner": target.display_name})
    return redirect("leads:detail", public_id=lead.public_id)


@require_POST
def lead_pool_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A manager takes the lead from its owner and leaves it in the pool."""
    membership, lead = _managed_lead(request, public_id)
    form = PoolForm(request.POST)
    if lead.status not in OPEN_STATUSES or lead.owner_id is None:
        form.add_error(None, _("Only a lead with an owner can be put back in the pool."))
    if not form.is_valid():
        return render_lead_page(request, membership, lead, status=400, pool_form=form)
    lead_return_to_pool(
        tenant=lead.tenant,
        acting_member=membership,
        lead=lead,
        reason=PoolReason.MANUAL,
        note=form.cleaned_data["reason"].strip(),
    )
    messages.success(request, _("The lead is back in the pool."))
    return redirect("leads:detail", public_id=lead.public_id)


@require_POST
def lead_touch_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The owner records a contact in one click; htmx gets the contacts card and the
    timeline back, a plain form post the page."""
    membership = lead_membership(request)
    lead = access_lead(membership, public_id)
    if lead.owner_id != membership.pk:
        raise PermissionDenied(_("Only the lead's owner records contacts."))
    lead = _locked(lead)
    form = TouchForm(request.POST)
    if form.is_valid():
        lead_record_touch(
            tenant=lead.tenant,
            acting_member=membership,
            lead=lead,
            channel=form.cleaned_data["channel"],
            note=form.cleaned_data["note"].strip(),
        )
        form = TouchForm()
        if not request.htmx:
            messages.success(request, _("Contact recorded."))
            return redirect("leads:detail", public_id=lead.public_id)
    elif not request.htmx:
        return render_lead_page(request, membership, lead, status=400, touch_form=form)
    context = {
        **timeline_context(request, lead, page=1),
        "touch_form": form,
        "is_lead_owner": True,
        "oob": True,
    }
    return TemplateResponse(request, "leads/touch_response.html", context)


# -- the rep's own pages ---------------------------------------------------------------------

WHY_NOT_DAYS = 30
WHY_NOT_MAX = 20
WHY_NOT_DECISIONS = 5
COMPANY_CONTAINS_FROM = 4  # characters of a company name before a partial match is tried


def _rep(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in roles.OWNERS:
        raise PermissionDenied(_("This page is for sales reps."))
    return membership


class WhyNotForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Phone or company name"),
        max_length=200,
        error_messages={"required": gettext_lazy("Type a phone number or a company name.")},
    )

    def clean_q(self):
        text = self.cleaned_data["q"].strip()
        phone = normalize.parse_phone(text) if any(c.isdigit() for c in text) else None
        if phone is not None:
            self.phone, self.company = phone.e164, ""
            return text
        key = normalize.company_key(text)
        if len(key) < 2:
            raise forms.ValidationError(
                _("Type a whole phone number, or at least two characters of the company name.")
            )
        self.phone, self.company = "", key
        return text


@require_GET
def why_not(request: HttpRequest) -> HttpResponse:
    """A rep looks up a lead they expected, by phone or company (last 30 days), and reads
    why it did not come to them. Nothing of the lead is shown beyond what they typed, its
    date and channel; whoever got it is "another rep"."""
    membership = _rep(request)
    form = WhyNotForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid():
        results = [_why_not_row(membership, lead) for lead in _why_not_leads(form)]
    load = rep_load(membership)
    context = {
        "form": form,
        "results": results,
        "days": WHY_NOT_DAYS,
        "load": load,
        "intake": load_text(load),
    }
    return TemplateResponse(request, "leads/why_not.html", context)


def _why_not_leads(form: WhyNotForm) -> list[Lead]:
    since = timezone.now() - timedelta(days=WHY_NOT_DAYS)
    if form.phone:
        match = Q(phone_key=form.phone)
    else:
        match = Q(company_key=form.company)
        if len(form.company) >= COMPANY_CONTAINS_FROM:
            match |= Q(company_key__contains=form.company)
    decisions = AssignmentDecision.objects.select_related("policy").order_by("-decided_at", "-id")
    return list(
        Lead.objects.filter(match, created_at__gte=since)
        .select_related("channel")
        .prefetch_related(Prefetch("decisions", queryset=decisions))
        .order_by("-created_at", "-id")[:WHY_NOT_MAX]
    )


def _why_not_row(membership, lead: Lead) -> dict:
    if lead.owner_id == membership.pk:
        went_to = _("You")
    elif lead.owner_id is not None:
        went_to = _("Another rep")
    elif lead.dispatch_after is not None:
        went_to = _("Nobody yet: waiting for an eligible rep")
    else:
        went_to = _("Nobody: in the pool")
    decisions = list(lead.decisions.all())[:WHY_NOT_DECISIONS]
    return {
        "created_at": lead.created_at,
        "channel": lead.channel.name,
        "went_to": went_to,
        "mine": lead.owner_id == membership.pk,
        "url": reverse("leads:detail", args=[lead.public_id])
        if lead.owner_id == membership.pk
        else "",
        "verdicts": [explain.why_not(d, membership) for d in decisions],
    }


def _active_params():
    """The active policy's parameters, read without creating anything (defaults if none)."""
    policy = policy_published()
    return (Params.of(policy) if policy is not None else Params()), policy


def profile_regions(profile: RepProfile) -> list[str]:
    """The profile's provinces, then its cities, each region once: a municipality such as
    上海市 is listed as a province and as a city, and shown once."""
    seen, regions = set(), []
    for name in [*(profile.provinces or []), *(profile.cities or [])]:
        key = normalize.region_key(name)
        if name and key not in seen:
            seen.add(key)
            regions.append(name)
    return regions


def load_text(load) -> str:
    """Whether the rep takes new leads now, in the words of "why didn't I get it"."""
    if load.verdict == OK:
        return _("%(free)s more before the cap of %(cap)s") % {
            "free": load.free,
            "cap": load.cap,
        }
    if load.verdict == AT_CAPACITY:
        return _(
            "At capacity: %(open)s open unverified leads of %(cap)s. Verify one to get new "
            "leads again."
        ) % {"open": load.open, "cap": load.cap}
    if load.verdict == PAUSED:
        return _("Paused from dispatch (observation zone)")
    return _("Marked unavailable (leave or away)")


@require_GET
def my_profile(request: HttpRequest) -> HttpResponse:
    """The rep's own profile, read-only: what they are matched on, their load, their zone
    and their share of leads over the fairness window."""
    membership = _rep(request)
    params, policy = _active_params()
    profile = RepProfile.objects.filter(membership=membership).first()
    has_profile = profile is not None
    if profile is None:
        profile = RepProfile(tenant=membership.tenant, membership=membership)  # the defaults
    today = tenant_today(timezone.now())
    since = today - timedelta(days=params.fairness_window_days - 1)
    ledger = RepLedgerDay.objects.filter(membership=membership, day__gte=since).aggregate(
        expected=Sum("expected"), received=Sum("received")
    )
    industries = dict(Industry.choices)
    load = rep_load(membership, params=params, profile=profile if has_profile else None)
    context = {
        "profile": profile,
        "has_profile": has_profile,
        "policy": policy,
        "params": params,
        "industries": [industries.get(i, i) for i in profile.industries or []],
        "regions": profile_regions(profile),
        "capacity": load.cap,
        "capacity_is_default": profile.capacity is None,
        "open_count": load.open,
        "load": load,
        "intake": load_text(load),
        "available": profile.available_on(today),
        "expected": explain_texts.number(ledger["expected"] or 0),
        "received": ledger["received"] or 0,
        "shortfall": explain_texts.number((ledger["expected"] or 0) - (ledger["received"] or 0)),
        "training": training_card_context(membership, profile=profile, params=params),
    }
    return TemplateResponse(request, "leads/my_profile.html", context)


# -- the observation zone's training card (F10) ----------------------------------------------


def training_card_context(membership, *, profile=None, params=None) -> dict | None:
    """What the training card says, or None when the rep is not in the observation zone."""
    if profile is None:
        profile = profile_of(membership)
    if profile is None or profile.zone not in (Zone.OBSERVATION, Zone.PROBATION):
        return None
    if params is None:
        params, _policy = _active_params()
    remaining = max(params.observation_recovery - profile.on_time_streak, 0)
    return {
        "profile": profile,
        "paused": profile.zone == Zone.OBSERVATION,
        "late_streak": profile.late_streak,
        "late_after_hours": params.late_after_hours,
        "recovery": params.observation_recovery,
        "remaining": remaining,
    }


def training_card(request: HttpRequest):
    """The home-page card (crm.navigation.register_home_card) for a paused rep."""
    membership = getattr(request, "membership", None)
    if membership is None or membership.role not in roles.OWNERS:
        return None
    context = training_card_context(membership)
    if context is None:
        return None
    return "leads/training_card.html", {"training": context}


@require_POST
def training_ack(request: HttpRequest) -> HttpResponse:
    """The rep read the training card ("I have read this"): dispatch resumes, on probation."""
    membership = _rep(request)
    if training_acknowledge(membership):
        messages.success(request, _("Thank you. You are back on dispatch, on probation."))
    return redirect("home")
