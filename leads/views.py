"""Lead pages: the filterable list (with CSV export), one lead's page with its assignment
("why this rep", reassign, return to pool, record a contact), and the rep's own pages (my
profile, "why did I not get it", the observation zone's training card)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Prefetch, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig
from django_tables2.export import TableExport

from crm import normalize
from crm.audit import audit
from crm.formatting import format_datetime, format_phone
from crm.http import query_with
from crm.models import Membership, Role
from crm.tables import IdsFirstPaginator
from leads.access import IMPORTERS, LEAD_READERS, access_lead, leads_visible_to
from leads.assignment import explain as explaining
from leads.assignment.engine import rep_load
from leads.filters import LeadFilter
from leads.intake.services import UTM_LABELS
from leads.models import (
    AssignmentDecision,
    ContactMethod,
    Industry,
    Lead,
    LeadEventKind,
    LeadStatus,
    PoolReason,
    RepLedgerDay,
    RepProfile,
    Zone,
    profile_of,
)
from leads.tables import LeadTable

LIST_ROLES = (*LEAD_READERS, Role.REP)
TIMELINE_PER_PAGE = 20
# Shown on the lead's page, in this order (labels are the fields' verbose names).
DETAIL_FIELDS = (
    "company",
    "contact_name",
    "phone",
    "email",
    "title",
    "industry",
    "industry_remark",
    "province",
    "city",
    "company_size",
    "budget",
    "in_tender",
    "sample_provided",
    "message",
    "external_id",
    "channel",
    "source_grade",
    "status",
    "owner",
    "registry_status",
    "created_at",
)


def _membership(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in LIST_ROLES:
        raise PermissionDenied(_("Leads are for sales, marketing and admins."))
    return membership


def lead_list(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    qs = (
        leads_visible_to(membership)
        .select_related("channel", "owner__user", "revisit_of")
        .prefetch_related("tags")
    )
    lead_filter = LeadFilter(request.GET, queryset=qs, membership=membership)
    table = LeadTable(lead_filter.qs)

    export_format = request.GET.get("_export")
    if export_format == TableExport.CSV:
        RequestConfig(request, paginate=False).configure(table)
        return _csv_response(table)

    paginate = {
        "per_page": LeadTable._meta.per_page,
        "paginator_class": IdsFirstPaginator,
        # No index serves the text search: count its matches in the same scan.
        "count_with_ids": bool(lead_filter.form.cleaned_data.get("q")),
    }
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = lead_filter.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": lead_filter,
        "filtered": filtered,
        "count": count,
        # Only asked when nothing matches: does the member see any lead at all?
        "has_leads": count > 0 or (filtered and leads_visible_to(membership).exists()),
        "can_import": membership.role in IMPORTERS,
        "is_admin": membership.role == Role.ADMIN,
        "is_rep": membership.role == Role.REP,
        "export_query": query_with(request, _export="csv", page=None),
    }
    return TemplateResponse(request, "leads/lead_list.html", context)


def _csv_response(table: LeadTable) -> HttpResponse:
    exporter = TableExport(TableExport.CSV, table)
    # A byte-order mark: without it Excel reads UTF-8 CSV as the local code page.
    response = HttpResponse("\ufeff" + exporter.export(), content_type=exporter.content_type())
    filename = f"leads-{timezone.localdate():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def lead_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _membership(request)
    lead = access_lead(membership, public_id)
    template = "leads/lead_detail.html"
    if request.htmx and request.htmx.target == "timeline":
        # The partial alone, for htmx paging.
        return TemplateResponse(request, template + "#timeline", _timeline_context(request, lead))
    if request.htmx and request.htmx.target == "touch-card":
        # The contacts card alone, refreshed after a follow-up (the `leadChanged` event).
        context = {"lead": lead, **_assignment_context(membership, lead)}
        return TemplateResponse(request, template + "#touch", context)
    return TemplateResponse(request, template, _detail_context(request, membership, lead))


def _timeline_context(request: HttpRequest, lead: Lead, *, page=None) -> dict:
    timeline = Paginator(lead.events.select_related("actor"), TIMELINE_PER_PAGE).get_page(
        page if page is not None else request.GET.get("page")
    )
    for event in timeline:
        event.original_url = _lead_url(event.data.get("original") if event.data else None)
    return {"lead": lead, "timeline": timeline}


def _detail_context(request: HttpRequest, membership, lead: Lead, **forms_) -> dict:
    context = {
        **_timeline_context(request, lead),
        "fields": _fields(lead),
        "utm": [(key, UTM_LABELS.get(key, key), value) for key, value in (lead.utm or {}).items()],
        "tags": lead.tags.all(),
        "revisits": _revisits(membership, lead),
        "inbound": [(e, _pretty(e)) for e in lead.inbound_events.select_related("channel")],
    }
    context.update(_assignment_context(membership, lead, **forms_))
    context.update(_verification_context(membership, lead, **forms_))
    return context


# -- verification and follow-ups on the lead's page (F16, F17; customers/views.py) -----------


def _verification_context(membership, lead: Lead, **forms_) -> dict:
    """The verification card (the verdict, or the owner's four buttons) and the owner's
    follow-up form (a bound one passed in keeps its errors)."""
    from leads.followups_context import follow_up_context, follow_up_form, verify_context

    context = verify_context(
        membership, lead, errors=forms_.get("verify_errors"), values=forms_.get("verify_values")
    )
    is_owner = lead.owner_id is not None and lead.owner_id == membership.pk
    context["can_follow_up"] = is_owner and lead.status != LeadStatus.INVALID
    if context["can_follow_up"]:
        form = forms_.get("follow_up_form") or follow_up_form(lead)
        context["follow_up"] = follow_up_context(lead, form)
    return context


def render_lead_page(request: HttpRequest, membership, lead: Lead, *, status=200, **forms_):
    """The whole lead page again (a plain form post with errors), bound forms kept."""
    context = _detail_context(request, membership, lead, **forms_)
    return TemplateResponse(request, "leads/lead_detail.html", context, status=status)


# -- assignment on the lead's page (F12, F13) --------------------------------------------------

MANAGERS = (Role.MANAGER, Role.ADMIN)
OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.ASSIGNED)
DECISIONS_SHOWN = 20


def _assignment_context(membership, lead: Lead, **forms_) -> dict:
    """The assignment state, "why this rep" for the latest decision, the earlier decisions,
    and the forms this member may use (bound ones passed in keep their errors)."""
    decisions = list(
        lead.decisions.select_related("policy", "chosen__user", "actor")[:DECISIONS_SHOWN]
    )
    pool_reasons = _pool_reasons(lead) if decisions else {}
    is_manager = membership.role in MANAGERS
    is_rep = membership.role == Role.REP
    latest, why, earlier = (decisions[0] if decisions else None), None, []
    if latest is not None:
        reason = pool_reasons.get(str(latest.public_id))
        if is_rep and latest.chosen_id != membership.pk:
            why = explaining.why_not(latest, membership, pool_reason=reason)
        else:
            why = explaining.explain(latest, pool_reason=reason)
        for decision in decisions[1:]:
            reason = pool_reasons.get(str(decision.public_id))
            if is_rep:
                earlier.append(explaining.why_not(decision, membership, pool_reason=reason))
            else:
                earlier.append(explaining.explain(decision, pool_reason=reason))
    is_open = lead.status in OPEN_STATUSES
    is_owner = lead.owner_id is not None and lead.owner_id == membership.pk
    context = {
        "pool_reason_label": _pool_reason_label(lead.pool_reason),
        "why": why,
        "why_latest": latest,
        "earlier_decisions": earlier,
        "show_candidates": is_manager,
        "is_lead_owner": is_owner,
        "can_manage_assignment": is_manager and is_open,
        "can_pool": is_manager and is_open and lead.owner_id is not None,
        "touch_form": forms_.get("touch_form") or (TouchForm() if is_owner else None),
    }
    if context["can_manage_assignment"]:
        context["reassign_form"] = forms_.get("reassign_form") or ReassignForm(
            tenant=membership.tenant, owner_id=lead.owner_id
        )
        context["pool_form"] = forms_.get("pool_form") or PoolForm()
    return context


def _pool_reasons(lead: Lead) -> dict[str, str]:
    """{decision public id: pool reason} from the lead's "pooled" timeline entries."""
    reasons = {}
    for data in lead.events.filter(kind=LeadEventKind.POOLED).values_list("data", flat=True):
        if data and data.get("decision"):
            reasons[data["decision"]] = data.get("reason", "")
    return reasons


def _pool_reason_label(code: str) -> str:
    if not code:
        return ""
    try:
        return PoolReason(code).label
    except ValueError:
        return code


class MemberSelect(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class ReassignForm(forms.Form):
    """A manager hands the lead to an active rep of the tenant, with a reason."""

    to = MemberSelect(
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
        label=gettext_lazy("New owner"),
        empty_label=gettext_lazy("Choose a rep"),
        error_messages={
            "required": gettext_lazy("Choose the rep who takes the lead."),
            "invalid_choice": gettext_lazy("Choose an active rep of this team."),
        },
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control form-control-sm"}),
        help_text=gettext_lazy("Kept with the decision and in the audit log."),
        error_messages={"required": gettext_lazy("Say why: the reason is kept in the audit log.")},
    )

    def __init__(self, *args, tenant, owner_id=None, **kwargs):
        kwargs.setdefault("auto_id", "reassign_%s")
        super().__init__(*args, **kwargs)
        reps = (
            Membership.objects.in_tenant(tenant)
            .active()
            .filter(role=Role.REP)
            .select_related("user")
            .order_by("user__username")
        )
        if owner_id is not None:
            reps = reps.exclude(pk=owner_id)  # handing it to its owner changes nothing
        self.fields["to"].queryset = reps


class PoolForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "pool_%s")
        super().__init__(*args, **kwargs)

    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control form-control-sm"}),
        error_messages={"required": gettext_lazy("Say why the lead goes back to the pool.")},
    )


class TouchForm(forms.Form):
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"),
        choices=ContactMethod.choices,
        initial=ContactMethod.PHONE,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        max_length=300,
        required=False,
        widget=forms.TextInput(
            attrs={
                "class": "form-control form-control-sm",
                "placeholder": gettext_lazy("Optional: what was said"),
            }
        ),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "touch_%s")
        super().__init__(*args, **kwargs)


def _managed_lead(request: HttpRequest, public_id) -> tuple:
    """(membership, lead locked for the change): 404 for a lead the member cannot see,
    then 403 unless a manager or admin."""
    membership = _membership(request)
    lead = access_lead(membership, public_id)
    if membership.role not in MANAGERS:
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


def _rerender(request, membership, lead, **forms_) -> HttpResponse:
    context = _detail_context(request, membership, lead, **forms_)
    return TemplateResponse(request, "leads/lead_detail.html", context, status=400)


@require_POST
def lead_reassign_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A manager gives the lead (assigned, waiting or pooled) to a rep of their choosing."""
    membership, lead = _managed_lead(request, public_id)
    form = ReassignForm(request.POST, tenant=membership.tenant, owner_id=lead.owner_id)
    if lead.status not in OPEN_STATUSES:
        form.add_error(None, _("Only new and assigned leads can be handed out."))
    if not form.is_valid():
        return _rerender(request, membership, lead, reassign_form=form)
    from leads.assignment.engine import lead_reassign

    target = form.cleaned_data["to"]
    lead_reassign(lead, to=target, reason=form.cleaned_data["reason"].strip(), actor=request.user)
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
        return _rerender(request, membership, lead, pool_form=form)
    from leads.assignment.engine import lead_return_to_pool

    previous = lead.owner
    reason = form.cleaned_data["reason"].strip()
    lead_return_to_pool(lead, reason=PoolReason.MANUAL, actor=request.user, note=reason)
    audit(
        tenant=lead.tenant,
        actor=request.user,
        action="lead.returned_to_pool",
        obj=lead,
        changes={"owner": [str(previous) if previous else None, None], "reason": [None, reason]},
    )
    messages.success(request, _("The lead is back in the pool."))
    return redirect("leads:detail", public_id=lead.public_id)


@require_POST
def lead_touch_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The owner records a contact in one click; htmx gets the contacts card and the
    timeline back, a plain form post the page."""
    membership = _membership(request)
    lead = access_lead(membership, public_id)
    if lead.owner_id != membership.pk:
        raise PermissionDenied(_("Only the lead's owner records contacts."))
    lead = _locked(lead)
    form = TouchForm(request.POST)
    if form.is_valid():
        from leads.assignment.zones import lead_record_touch

        lead_record_touch(
            lead,
            by=membership,
            channel=form.cleaned_data["channel"],
            note=form.cleaned_data["note"].strip(),
        )
        form = TouchForm()
        if not request.htmx:
            messages.success(request, _("Contact recorded."))
            return redirect("leads:detail", public_id=lead.public_id)
    elif not request.htmx:
        return _rerender(request, membership, lead, touch_form=form)
    context = {
        **_timeline_context(request, lead, page=1),
        "touch_form": form,
        "is_lead_owner": True,
        "oob": True,
    }
    return TemplateResponse(request, "leads/touch_response.html", context)


def _revisits(membership, lead: Lead):
    """The revisits of an original that this member may see (newest first)."""
    if lead.revisit_of_id is not None:
        return []
    return list(leads_visible_to(membership).filter(revisit_of=lead).select_related("channel")[:50])


def _lead_url(public_id) -> str | None:
    try:
        return reverse("leads:detail", args=[uuid.UUID(str(public_id))])
    except ValueError:
        return None


def _fields(lead: Lead) -> list[tuple[str, object, bool]]:
    """(label, display value, multi-line) for each of DETAIL_FIELDS."""
    rows = []
    for name in DETAIL_FIELDS:
        field = Lead._meta.get_field(name)
        value = getattr(lead, name)
        if field.choices:
            value = getattr(lead, f"get_{name}_display")()
        elif name == "owner":
            value = value.display_name if value else None
        elif isinstance(value, bool):
            value = _("Yes") if value else _("No")
        elif name == "created_at":
            value = format_datetime(value)
        elif name == "phone":
            value = format_phone(value)
        rows.append((field.verbose_name, value, isinstance(field, models.TextField)))
    return rows


def _pretty(event) -> str:
    """The payload as indented JSON, else the body exactly as received."""
    if event.payload is not None:
        return json.dumps(event.payload, ensure_ascii=False, indent=2, sort_keys=True)
    return event.raw_body


# -- the rep's own pages ---------------------------------------------------------------------

WHY_NOT_DAYS = 30
WHY_NOT_MAX = 20
WHY_NOT_DECISIONS = 5
COMPANY_CONTAINS_FROM = 4  # characters of a company name before a partial match is tried


def _rep(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role != Role.REP:
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
        "verdicts": [explaining.why_not(d, membership) for d in decisions],
    }


def _active_params():
    """The active policy's parameters, read without creating anything (defaults if none)."""
    from leads.assignment.engine import Params, policy_published

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
    from leads.assignment.engine import AT_CAPACITY, OK, PAUSED

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
    from crm.tenancy import tenant_today

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
        "expected": explaining.number(ledger["expected"] or 0),
        "received": ledger["received"] or 0,
        "shortfall": explaining.number((ledger["expected"] or 0) - (ledger["received"] or 0)),
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
    if membership is None or membership.role != Role.REP:
        return None
    context = training_card_context(membership)
    if context is None:
        return None
    return "leads/training_card.html", {"training": context}


@require_POST
def training_ack(request: HttpRequest) -> HttpResponse:
    """The rep read the training card ("I have read this"): dispatch resumes, on probation."""
    from leads.assignment.zones import training_acknowledge

    membership = _rep(request)
    if training_acknowledge(membership):
        messages.success(request, _("Thank you. You are back on dispatch, on probation."))
    return redirect("home")
