"""The verification card and the follow-up form of a lead, as the lead page
(leads.views), the board (leads.board.views) and the verdict's and follow-up's own
answers (leads.followups) embed them: their templates' contexts."""

from __future__ import annotations

from django.urls import reverse

from customers import services
from customers.forms import InteractionForm
from customers.models import Interaction, PresetKind
from customers.views import follow_up_form_context
from leads.access import is_lead_owner
from leads.models import Lead, LeadStatus, Verification
from leads.verification import invalid_reasons

# -- the verification card (F16) ---------------------------------------------------------------


def verify_form_context(*, today, errors=None, values=None, reasons=(), actions=()) -> dict:
    """What templates/leads/verify_forms.html needs besides the URL and the key: the
    pick lists, the dates' bounds and defaults, and a refused post's values and errors."""
    values = dict(values or {})
    if values.get("outcome") != Verification.VALID_MORE_INFO:
        values["next_action_due"] = today.isoformat()  # a first look: today, changeable
    return {
        "verify_errors": errors or {},
        "verify_values": values,
        "invalid_reasons": list(reasons),
        "invalid_choices": [
            (o.value, o.label) for o in Verification if o not in Verification.valid()
        ],
        "next_actions": list(actions),
        "min_date": today.isoformat(),
    }


def verify_context(
    membership, lead: Lead, *, error: str = "", errors=None, values=None, in_place=False
) -> dict:
    """The verification card: the verdict and the lead's open next step, or for the owner
    the four verdicts, each with what it needs (`values` and `errors`: a refused post's).
    `in_place`: the forms post with htmx into the element around them (the board)."""
    can_verify = (
        not lead.verification
        and is_lead_owner(membership, lead)
        and lead.status == LeadStatus.ASSIGNED
    )
    context = {
        "lead": lead,
        "can_verify": can_verify,
        "valid_outcomes": [o for o in Verification if o in Verification.valid()],
        "invalid_outcomes": [o for o in Verification if o not in Verification.valid()],
        "verify_error": error,
        "verify_url": reverse("leads:verify", args=[lead.public_id]),
        "verify_key": "verify",
        "in_place": in_place,
        "next_step": None,
    }
    if can_verify:
        context.update(
            verify_form_context(
                today=services.tenant_today(),
                errors=errors,
                values=values,
                reasons=invalid_reasons(),
                actions=services.presets(PresetKind.ACTION),
            )
        )
    else:
        context["verify_errors"] = errors or {}
        if lead.verification and lead.owner_id is not None:
            context["next_step"] = (
                Interaction.objects.filter(
                    lead=lead, by_id=lead.owner_id, next_done_at__isnull=True
                )
                .select_related("next_action")
                .order_by("-at", "-id")
                .first()
            )
    return context


# -- the follow-up form (F17) -----------------------------------------------------------------


def form_key(lead: Lead) -> str:
    """The id of a lead's follow-up form on a page (customers.views.contact_ended reads
    it: `fu-` and the lead's id)."""
    return "fu-" + lead.public_id.hex


def follow_up_form(lead: Lead, *, data=None, autofocus: bool = False) -> InteractionForm:
    """The follow-up form for a lead (ids unique per lead on a page)."""
    return InteractionForm(data, key=form_key(lead), autofocus=autofocus)


def follow_up_context(lead: Lead, form: InteractionForm) -> dict:
    """What templates/customers/interaction_form.html needs for a lead's form."""
    return follow_up_form_context(form, reverse("leads:follow_up", args=[lead.public_id]))
