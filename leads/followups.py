"""The owner's verdict and follow-ups on a lead over HTTP (F16, F17).

- POST `/leads/<uuid>/verify/` (`leads:verify`): the owner's one-click verdict
  (leads.verification.lead_verify).
- GET/POST `/leads/<uuid>/follow-up/` (`leads:follow_up`): the structured follow-up form,
  in place with htmx (leads.followups_services.lead_follow_up); the form, its round trip
  and its templates are the customers app's (customers.views.follow_up_exchange).

Who may: a member of the sales team (else 403) who reads the lead (else 404, as on the
lead page: leads.access.access_lead) and owns it (else 403, as the page's touch button).
With `HX-Request` the answers are fragments, errors included (403, 409, 422); a plain
form post gets a redirect or a page. A success sends the `leadChanged` event. The card
and the form as pages embed them: leads.followups_context.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from customers import services
from customers.models import Interaction, PresetKind
from customers.views import changed, follow_up_exchange, refused, sales_member
from leads.access import access_lead, is_lead_owner
from leads.followups_context import form_key, verify_context
from leads.followups_services import lead_follow_up
from leads.models import InvalidReason, Lead, LeadStatus, Verification
from leads.verification import VerificationError, invalid_reasons, lead_verify
from leads.views import render_lead_page


def _locked(membership, public_id) -> Lead:
    """The lead `membership` reads (404 otherwise: leads.access), locked for the change."""
    lead = access_lead(membership, public_id)
    return (
        Lead.objects.select_for_update(of=("self",))
        .select_related("tenant", "owner__user", "customer", "contact", "invalid_reason")
        .get(pk=lead.pk)
    )


VERIFY_FIELDS = ("outcome", "invalid_reason", "visit_date", "next_action", "next_action_due")


def _date_field(text: str, errors: dict, name: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = [_("Enter a date like 2026-03-10.")]
        return None


def _verify_input(post) -> tuple[dict, dict]:
    """The verdict's fields from a POST: (the service's keyword arguments, parse errors)."""
    outcome = post.get("outcome", "")
    values, errors = {"outcome": outcome}, {}
    reason_id = post.get("invalid_reason", "").strip()
    if reason_id and outcome not in Verification.valid():
        reason = (
            invalid_reasons().filter(pk=int(reason_id)).first() if reason_id.isdigit() else None
        )
        # Not one of the tenant's: a stand-in the service refuses with its message.
        values["invalid_reason"] = reason or InvalidReason(pk=0, tenant_id=0)
    if outcome == Verification.VALID_VISIT:
        values["visit_date"] = _date_field(post.get("visit_date"), errors, "visit_date")
    elif outcome == Verification.VALID_MORE_INFO:
        action_id = post.get("next_action", "").strip()
        if action_id:
            try:
                values["next_action"] = (
                    services.presets(PresetKind.ACTION).filter(public_id=action_id).first()
                )
            except ValidationError:
                values["next_action"] = None
            if values["next_action"] is None:
                errors["next_action"] = [_("Choose an action from the list.")]
        values["next_action_due"] = _date_field(
            post.get("next_action_due"), errors, "next_action_due"
        )
    return values, errors


@require_POST
def lead_verify_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The owner's verdict: `outcome`; `invalid_reason` (an id) for an invalid one;
    `visit_date` for "visit booked"; `next_action` (a preset's uuid) and
    `next_action_due` for "needs more information". 404 for a lead the member cannot
    read, 403 for anyone but the owner, 409 for a verified lead, 422 with the field
    errors for anything missing or wrong."""
    membership = sales_member(request)
    lead = _locked(membership, public_id)
    values, parse_errors = _verify_input(request.POST)
    posted = {name: request.POST.get(name, "") for name in VERIFY_FIELDS}
    try:
        lead = lead_verify(tenant=request.tenant, acting_member=membership, lead=lead, **values)
    except VerificationError as exc:
        lead.refresh_from_db()
        if not request.htmx:
            if exc.status == 403:
                raise PermissionDenied(exc.message) from exc
            context = {"message": exc.message, "lead": lead}
            return TemplateResponse(request, "customers/conflict.html", context, status=exc.status)
        context = verify_context(membership, lead, error=exc.message, in_place=True)
        return TemplateResponse(
            request, "leads/lead_detail.html#verify", context, status=exc.status
        )
    except ValidationError as exc:
        # A value that did not parse says so, rather than "missing".
        errors = {**exc.message_dict, **parse_errors}
        if not request.htmx:
            return render_lead_page(
                request, membership, lead, status=422, verify_errors=errors, verify_values=posted
            )
        context = verify_context(membership, lead, errors=errors, values=posted, in_place=True)
        return TemplateResponse(request, "leads/lead_detail.html#verify", context, status=422)
    if not request.htmx:
        messages.success(
            request,
            _("Verified: %(outcome)s.") % {"outcome": lead.get_verification_display()},
        )
        return redirect("leads:detail", public_id=lead.public_id)
    response = TemplateResponse(
        request, "leads/lead_detail.html#verify", verify_context(membership, lead, in_place=True)
    )
    return changed(response)


# -- follow-ups (F17, F18) --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def lead_follow_up_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The lead owner's follow-up form (GET: the fragment; POST: save it)."""
    membership = sales_member(request)
    lead = _locked(membership, public_id)
    if not is_lead_owner(membership, lead):
        raise PermissionDenied(_("Only the lead's owner logs its follow-ups."))
    if lead.status == LeadStatus.INVALID:
        return refused(
            request, _("This lead was verified as invalid: it takes no follow-ups."), 409, lead
        )

    def save(data) -> Interaction:
        return lead_follow_up(
            tenant=request.tenant,
            acting_member=membership,
            lead=lead,
            channel=data["channel"],
            talk_tags=data["talk_tags"],
            pains=data["pains"],
            roles=data["roles"],
            note=data["note"],
            next_action=data["next_action"],
            next_action_due=data["next_action_due"],
        )

    def page(form) -> HttpResponse:
        return render_lead_page(request, membership, lead, status=422, follow_up_form=form)

    return follow_up_exchange(
        request,
        key=form_key(lead),
        action=reverse("leads:follow_up", args=[lead.public_id]),
        save=save,
        page=page,
        done=reverse("leads:detail", args=[lead.public_id]),
    )
