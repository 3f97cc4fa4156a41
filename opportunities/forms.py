"""The forms of the opportunity's page (opportunities.views_page): the opportunity itself
(create and edit), its evidence (attachments, technical questions, the decision chain),
the validity approval and closing it. Choices are the tenant's rows, picked by their
public id (or code); the services check everything again and their field errors come
back on these forms (`add_service_errors`)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import Membership
from crm.roles import OWNER_CHOICES
from customers.models import Contact
from opportunities.models import (
    AttachmentKind,
    Attitude,
    BudgetBand,
    ChainRole,
    ContactStatus,
    Influence,
    LostReason,
    OpportunityContact,
)

SELECT = {"class": "form-select form-select-sm"}
INPUT = {"class": "form-control form-control-sm"}


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError on `form`: its field errors on the fields the form has,
    the others (and a plain message) above the form."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class MemberSelect(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class ContactSelect(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name or '—'} · {obj.title}" if obj.title else (obj.name or "—")


class MonthInput(forms.DateInput):
    input_type = "month"

    def __init__(self, attrs=None):
        super().__init__(attrs={**INPUT, **(attrs or {})}, format="%Y-%m")


class OpportunityForm(forms.Form):
    """An opportunity's fields (create and edit). `owner` only for the members who hand
    opportunities over (`may_assign`)."""

    name = forms.CharField(
        label=_("Name"), max_length=200, widget=forms.TextInput(attrs=INPUT), required=False
    )
    product_line = forms.CharField(
        label=_("Product line"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs=INPUT),
    )
    amount = forms.DecimalField(
        label=_("Amount (CNY)"),
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        widget=forms.NumberInput(attrs={**INPUT, "step": "0.01", "min": "0"}),
    )
    budget_band = forms.ChoiceField(
        label=_("Budget band"), choices=BudgetBand.choices, widget=forms.Select(attrs=SELECT)
    )
    expected_close = forms.DateField(
        label=_("Expected close month"),
        required=False,
        input_formats=["%Y-%m", "%Y-%m-%d"],
        widget=MonthInput(),
        error_messages={"invalid": _("Enter a month like 2026-03.")},
    )
    contact = ContactSelect(
        label=_("Main contact"),
        queryset=Contact.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label=_("None"),
        widget=forms.Select(attrs=SELECT),
    )
    owner = MemberSelect(
        label=_("Owner"),
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        widget=forms.Select(attrs=SELECT),
        error_messages={"invalid_choice": _("Choose an active rep or manager.")},
    )

    def __init__(self, *args, customer, tenant, may_assign: bool, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.filter(customer=customer)
        if may_assign:
            keep = Q(pk=owner.pk) if owner is not None else Q(pk__in=[])
            self.fields["owner"].queryset = (
                Membership.objects.in_tenant(tenant)
                .filter(Q(role__in=OWNER_CHOICES, is_active=True, user__is_active=True) | keep)
                .select_related("user")
                .order_by("user__username")
            )
        else:
            del self.fields["owner"]

    def changes(self) -> dict:
        """The fields the member changed, as opportunity_update takes them."""
        return {name: self.cleaned_data[name] for name in self.changed_data}


class EditForm(OpportunityForm):
    def __init__(self, *args, opportunity, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name": opportunity.name,
                "product_line": opportunity.product_line,
                "amount": opportunity.amount,
                "budget_band": opportunity.budget_band,
                "expected_close": opportunity.expected_close,
                "contact": opportunity.contact,
                "owner": opportunity.owner,
            },
        )
        super().__init__(*args, customer=opportunity.customer, owner=opportunity.owner, **kwargs)
        self.fields["name"].required = True
        self.fields["name"].error_messages["required"] = _("Give the opportunity a name.")


class AttachmentForm(forms.Form):
    kind = forms.ModelChoiceField(
        label=_("What the file is"),
        queryset=AttachmentKind.objects.none(),
        to_field_name="code",
        empty_label=_("Choose…"),
        widget=forms.Select(attrs=SELECT),
        error_messages={
            "required": _("Choose what the file is."),
            "invalid_choice": _("Choose what the file is."),
        },
    )
    file = forms.FileField(
        label=_("File"),
        widget=forms.ClearableFileInput(attrs=INPUT),
        error_messages={"required": _("Choose a file."), "empty": _("The file is empty.")},
    )
    effective = forms.BooleanField(
        label=_("Signed and 已生效 (signed contracts only)"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "attach-%s")
        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = AttachmentKind.objects.filter(is_active=True)


class QuestionForm(forms.Form):
    text = forms.CharField(
        label=_("Technical question"),
        max_length=300,
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off"}),
        error_messages={"required": _("Write the question down.")},
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "question-%s")
        super().__init__(*args, **kwargs)


class MemberFields(forms.Form):
    """What a decision-chain member says: influence, attitude, contact status, demands."""

    influence = forms.ChoiceField(
        label=_("Influence"),
        choices=Influence.choices,
        initial=Influence.MEDIUM,
        widget=forms.Select(attrs=SELECT),
    )
    attitude = forms.ChoiceField(
        label=_("Attitude"),
        choices=Attitude.choices,
        initial=Attitude.UNKNOWN,
        widget=forms.Select(attrs=SELECT),
    )
    contact_status = forms.ChoiceField(
        label=_("Contact status"),
        choices=ContactStatus.choices,
        initial=ContactStatus.NOT_YET,
        widget=forms.Select(attrs=SELECT),
    )
    key_demands = forms.CharField(
        label=_("Key demands"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off"}),
    )


class MemberEditForm(MemberFields):
    def __init__(self, *args, member: OpportunityContact, **kwargs):
        kwargs.setdefault("auto_id", f"member-{member.public_id.hex}-%s")
        kwargs.setdefault(
            "initial",
            {
                "influence": member.influence,
                "attitude": member.attitude,
                "contact_status": member.contact_status,
                "key_demands": member.key_demands,
            },
        )
        super().__init__(*args, **kwargs)
        self.member = member


class MemberAddForm(MemberFields):
    """Map a member: one of the customer's contacts, or a new one by name."""

    contact = ContactSelect(
        label=_("Contact"),
        queryset=Contact.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label=_("A new contact (below)"),
        widget=forms.Select(attrs=SELECT),
    )
    contact_name = forms.CharField(
        label=_("New contact's name"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off"}),
    )
    contact_title = forms.CharField(
        label=_("Job title"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off"}),
    )
    contact_phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off", "inputmode": "tel"}),
    )
    role = forms.ModelChoiceField(
        label=_("Role"),
        queryset=ChainRole.objects.none(),
        to_field_name="public_id",
        empty_label=_("Choose…"),
        widget=forms.Select(attrs=SELECT),
        error_messages={
            "required": _("Choose the role."),
            "invalid_choice": _("Choose the role."),
        },
    )
    field_order = [
        "contact",
        "contact_name",
        "contact_title",
        "contact_phone",
        "role",
        "influence",
        "attitude",
        "contact_status",
        "key_demands",
    ]

    def __init__(self, *args, customer, **kwargs):
        kwargs.setdefault("auto_id", "chain-%s")
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.filter(customer=customer)
        self.fields["role"].queryset = ChainRole.objects.filter(is_active=True)

    def clean(self):
        data = super().clean()
        if not data.get("contact") and not (data.get("contact_name") or "").strip():
            self.add_error("contact", _("Choose a contact of the customer, or name a new one."))
        return data


class ReasonSelect(forms.Select):
    """The lost reasons, each option saying whether the reason needs its detail (the page
    shows the detail field for those only: static/opportunities/page.js)."""

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        instance = getattr(value, "instance", None)
        if instance is not None and instance.needs_detail:
            option["attrs"]["data-needs-detail"] = "1"
        return option


class LoseForm(forms.Form):
    reason = forms.ModelChoiceField(
        label=_("Why it was lost"),
        queryset=LostReason.objects.none(),
        to_field_name="public_id",
        empty_label=_("Choose…"),
        widget=ReasonSelect(attrs=SELECT),
        error_messages={
            "required": _("Choose why it was lost."),
            "invalid_choice": _("Choose why it was lost."),
        },
    )
    detail = forms.CharField(
        label=_("Detail"),
        max_length=100,
        required=False,
        help_text=_("What the reason names, e.g. the competitor chosen."),
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off"}),
    )
    blocker = forms.ModelChoiceField(
        label=_("Who blocked it (optional)"),
        queryset=OpportunityContact.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label=_("Nobody named"),
        widget=forms.Select(attrs=SELECT),
        error_messages={
            "invalid_choice": _("Choose a member of this opportunity's decision chain.")
        },
    )

    def __init__(self, *args, opportunity, **kwargs):
        kwargs.setdefault("auto_id", "lose-%s")
        super().__init__(*args, **kwargs)
        self.fields["reason"].queryset = LostReason.objects.filter(is_active=True)
        blocker = self.fields["blocker"]
        blocker.queryset = OpportunityContact.objects.filter(
            opportunity=opportunity
        ).select_related("contact", "role")
        blocker.label_from_instance = lambda m: f"{m.contact.name or '—'} · {m.role.name}"


class DecideForm(forms.Form):
    approve = forms.TypedChoiceField(
        choices=[("1", _("Approve")), ("0", _("Refuse"))],
        coerce=lambda value: value == "1",
        error_messages={"required": _("Approve or refuse.")},
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={**INPUT, "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "decide-%s")
        super().__init__(*args, **kwargs)
