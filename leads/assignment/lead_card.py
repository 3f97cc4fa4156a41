"""The assignment card on the lead's page (F12, F13): the assignment state, "why this rep"
for the latest decision and the earlier ones, and the forms this member may use: reassign
and return to the pool (managers), record a contact (the owner). leads.views puts it on
the page; leads.assignment.views takes the forms' posts.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy

from crm import roles
from crm.models import Membership
from leads.assignment import explain
from leads.models import ContactMethod, Lead, LeadEventKind, LeadStatus, PoolReason

OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.ASSIGNED)
DECISIONS_SHOWN = 20


def assignment_context(membership, lead: Lead, **forms_) -> dict:
    """The assignment state, "why this rep" for the latest decision, the earlier decisions,
    and the forms this member may use (bound ones passed in keep their errors)."""
    decisions = list(
        lead.decisions.select_related("policy", "chosen__user", "actor")[:DECISIONS_SHOWN]
    )
    pool_reasons = _pool_reasons(lead) if decisions else {}
    can_assign = membership.role in roles.ASSIGNERS
    is_rep = membership.role in roles.OWNERS
    latest, why, earlier = (decisions[0] if decisions else None), None, []
    if latest is not None:
        reason = pool_reasons.get(str(latest.public_id))
        if is_rep and latest.chosen_id != membership.pk:
            why = explain.why_not(latest, membership, pool_reason=reason)
        else:
            why = explain.explain(latest, pool_reason=reason)
        for decision in decisions[1:]:
            reason = pool_reasons.get(str(decision.public_id))
            if is_rep:
                earlier.append(explain.why_not(decision, membership, pool_reason=reason))
            else:
                earlier.append(explain.explain(decision, pool_reason=reason))
    is_open = lead.status in OPEN_STATUSES
    is_owner = lead.owner_id is not None and lead.owner_id == membership.pk
    context = {
        "pool_reason_label": _pool_reason_label(lead.pool_reason),
        "why": why,
        "why_latest": latest,
        "earlier_decisions": earlier,
        "show_candidates": membership.role in roles.MANAGERS,
        "is_lead_owner": is_owner,
        "can_manage_assignment": can_assign and is_open,
        "can_pool": can_assign and is_open and lead.owner_id is not None,
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
            .filter(role__in=roles.OWNERS)
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
