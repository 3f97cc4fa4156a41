"""The hosted lead form (F7): what a prospect fills in at /f/<channel_key>/."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.normalize import parse_phone
from leads.intake.services import UTM_FIELDS
from leads.models import Industry

UTM_MAX_LENGTH = 200
# The honeypot: a text input people never see and form-filling bots fill in.
HONEYPOT = "website"

YES, NO, UNKNOWN = "yes", "no", ""
FACT_CHOICES = [(YES, _("Yes")), (NO, _("No")), (UNKNOWN, _("Not sure"))]


def utm_from(data) -> dict[str, str]:
    """The non-empty utm_* values of a QueryDict or dict, trimmed and capped."""
    utm = {}
    for name in UTM_FIELDS:
        value = str(data.get(name) or "").strip()[:UTM_MAX_LENGTH]
        if value:
            utm[name] = value
    return utm


MESSAGE_MAX_LENGTH = 2000
_TOO_LONG = _("At most %(limit_value)d characters, please: this has %(show_value)d.")


class _Limited:
    """A text whose limit is a field error, never a silent cut: no maxlength attribute
    (with one, browsers drop what is pasted past the limit without a word)."""

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        return attrs


class LimitedCharField(_Limited, forms.CharField):
    default_error_messages = {"max_length": _TOO_LONG}


class LimitedEmailField(_Limited, forms.EmailField):
    default_error_messages = {"max_length": _TOO_LONG}


def _text(label, max_length: int, *, required=True, help_text="", **attrs) -> forms.CharField:
    return LimitedCharField(
        label=label,
        help_text=help_text,
        max_length=max_length,
        required=required,
        widget=forms.TextInput(attrs={"class": "form-control form-control-lg", **attrs}),
    )


def _fact(label) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        choices=FACT_CHOICES,
        required=False,
        initial=UNKNOWN,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )


class LeadFormSubmission(forms.Form):
    """The five core fields, required; e-mail, job title and two objective facts, optional."""

    company = _text(_("Company name"), 200, autocomplete="organization")
    contact_name = _text(_("Contact person"), 100, autocomplete="name")
    phone = _text(
        _("Mobile / phone"),
        32,
        help_text=_("A mobile number, or a landline with its area code."),
        autocomplete="tel",
        inputmode="tel",
        type="tel",
    )
    industry = forms.ChoiceField(
        label=_("Industry"),
        choices=Industry.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    industry_remark = _text(
        _("Industry remark"),
        200,
        required=False,
        help_text=_("Optional: your line of business."),
    )
    message = LimitedCharField(
        label=_("Describe your needs"),
        help_text=_(
            "Products, quantities, timing: anything that helps us answer well "
            "(at most 2000 characters)."
        ),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"class": "form-control form-control-lg", "rows": 4}),
    )
    email = LimitedEmailField(
        label=_("E-mail"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(
            attrs={"class": "form-control form-control-lg", "autocomplete": "email"}
        ),
    )
    title = _text(_("Job title"), 100, required=False, autocomplete="organization-title")
    in_tender = _fact(_("Is this part of a tender?"))
    sample_provided = _fact(_("Have you already received a sample?"))

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:  # Bootstrap's error styling on the input itself
                attrs = self.fields[name].widget.attrs
                attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()

    @property
    def honeypot_filled(self) -> bool:
        return bool(self.is_bound and str(self.data.get(HONEYPOT) or "").strip())

    def clean_phone(self) -> str:
        phone = parse_phone(self.cleaned_data["phone"])
        if phone is None:
            raise forms.ValidationError(
                _("Enter a valid mobile or landline number, e.g. 138 1234 5678 or 021 6123 4567."),
                code="invalid_phone",
            )
        return phone.e164

    def to_payload(self, utm) -> dict:
        """The inbound-event payload: lead field names as keys (the pipeline maps them
        as they are), the yes/no facts as booleans or left out, and the UTM parameters."""
        data = self.cleaned_data
        payload = {
            name: data[name].strip()
            for name in ("company", "contact_name", "phone", "industry", "message")
        }
        remark = data.get("industry_remark", "").strip()
        if remark and data["industry"] == Industry.OTHER:
            payload["industry_remark"] = remark
        for name in ("email", "title"):
            if data.get(name, "").strip():
                payload[name] = data[name].strip()
        for name in ("in_tender", "sample_provided"):
            if data.get(name) in (YES, NO):
                payload[name] = data[name] == YES
        payload.update(utm_from(utm))
        return payload
