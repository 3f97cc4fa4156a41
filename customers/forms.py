"""The structured follow-up form (F17): picked, never typed. Every control is a labelled
radio or checkbox group (Tab reaches the group, Space/arrows choose) except the optional
note and the date, which is pre-filled; Enter submits. And the customer page's "changed
jobs" form on a contact (`ContactLeftForm`)."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from customers import services
from customers.models import Contact, DecisionRole, PresetKind


class InteractionForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("Channel"),
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        error_messages={"required": _("Choose how you were in contact.")},
    )
    talk_tags = forms.MultipleChoiceField(
        label=_("Talk tags"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    pains = forms.MultipleChoiceField(
        label=_("Customer's pain points"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    roles = forms.MultipleChoiceField(
        label=_("Decision-chain roles reached"),
        required=False,
        choices=DecisionRole.choices,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=500,
        widget=forms.TextInput(
            attrs={
                "class": "form-control form-control-sm",
                "placeholder": _("Optional: a few words (再考虑, 价格多少 … suggest a status)"),
                "autocomplete": "off",
            }
        ),
    )
    next_action = forms.ModelChoiceField(
        label=_("Next action"),
        queryset=None,
        to_field_name="public_id",
        empty_label=None,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        error_messages={
            "required": _("Choose the next action."),
            "invalid_choice": _("Choose an action from the list."),
        },
    )
    next_action_due = forms.DateField(
        label=_("Before"),
        error_messages={
            "required": _("Say by when the next action is due."),
            "invalid": _("Enter a date like 2026-03-10."),
        },
    )

    # The fields in the order they are rendered (the first with an error gets the focus).
    ORDER = ("channel", "talk_tags", "pains", "roles", "note", "next_action", "next_action_due")

    def __init__(self, *args, key: str, autofocus: bool = False, now=None, **kwargs):
        from customers.models import ContactMethod

        kwargs.setdefault("auto_id", f"{key}-%s")
        initial = kwargs.setdefault("initial", {})
        self.today = services.tenant_today(now)
        initial.setdefault("channel", ContactMethod.PHONE)
        initial.setdefault("next_action_due", services.add_working_days(self.today, 1))
        super().__init__(*args, **kwargs)
        self.key = key
        self.fields["channel"].choices = ContactMethod.choices
        self.fields["talk_tags"].choices = [
            (p.name, p.name) for p in services.presets(PresetKind.TALK_TAG)
        ]
        self.fields["pains"].choices = [(p.name, p.name) for p in services.presets(PresetKind.PAIN)]
        self.fields["next_action"].queryset = services.presets(PresetKind.ACTION)
        self.focus = None
        if self.is_bound:
            pass  # the focus goes to the first field with an error, once validated
        elif autofocus:
            self.focus = "channel"
            self.fields["channel"].widget.attrs["autofocus"] = True

    def full_clean(self):
        super().full_clean()
        self._focus_first_error()

    def add_error(self, field, error):
        super().add_error(field, error)
        self._focus_first_error()

    def _focus_first_error(self):
        if not self.is_bound or not self._errors:
            return
        for name in self.ORDER:
            if name in self._errors:
                for field in self.fields.values():
                    field.widget.attrs.pop("autofocus", None)
                if name != "next_action_due":
                    self.fields[name].widget.attrs["autofocus"] = True
                self.focus = name
                return

    def clean_next_action_due(self):
        due = self.cleaned_data["next_action_due"]
        if due < self.today:
            raise forms.ValidationError(_("The next action cannot be due in the past."))
        return due

    @property
    def due_value(self) -> str:
        """The date field's value as the date input wants it (YYYY-MM-DD)."""
        value = self["next_action_due"].value()
        return value.isoformat() if isinstance(value, date) else (value or "")

    @property
    def min_due(self) -> str:
        return self.today.isoformat()


class ContactLeftForm(forms.Form):
    """A contact changed jobs (customers.views.contact_left): has left, confirmed, and the
    new company when known. The customer page writes its inputs itself (one form per
    contact row; ids `cl-<contact>-<field>`)."""

    has_left = forms.BooleanField(
        label=_("Has left the company"),
        error_messages={"required": _("Tick to confirm that the contact has left.")},
    )
    new_company = forms.CharField(
        label=_("Now works at"),
        required=False,
        max_length=Contact._meta.get_field("new_company").max_length,
    )

    def __init__(self, *args, contact: Contact, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact = contact
