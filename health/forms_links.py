"""The form that sends a customer a tracked link (health.links.link_create)."""

from __future__ import annotations

from django import forms
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from customers.models import Contact, Customer
from health.models import LinkKind, TrackedLink


class LinkForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=LinkKind.choices,
        initial=LinkKind.DOCUMENT,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        error_messages={
            "required": _("Choose a document or a quote."),
            "invalid_choice": _("Choose a document or a quote."),
        },
    )
    title = forms.CharField(
        label=_("Title"),
        max_length=TrackedLink._meta.get_field("title").max_length,
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
        error_messages={"required": _("Give the link a title.")},
    )
    target_url = forms.CharField(
        label=_("Address it opens"),
        max_length=TrackedLink._meta.get_field("target_url").max_length,
        widget=forms.URLInput(
            attrs={"class": "form-control form-control-sm", "placeholder": "https://"}
        ),
        error_messages={"required": _("Enter the address the link opens.")},
        # Checked here too, so the form shows it beside any other field's error.
        validators=[
            URLValidator(
                schemes=["http", "https"],
                message=_("Enter a web address starting with http:// or https://."),
            )
        ],
    )
    contact = forms.ModelChoiceField(
        label=_("Contact"),
        queryset=Contact.objects.none(),
        required=False,
        to_field_name="pk",
        empty_label=_("(none)"),
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
        error_messages={"invalid_choice": _("Choose one of this customer's contacts.")},
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        kwargs.setdefault("auto_id", "health-link-%s")
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.filter(customer=customer)
