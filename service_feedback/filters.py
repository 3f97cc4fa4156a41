"""The ticket list's filter bar (django-filter): what a GET query string narrows the list
to. Rendered by hand like the customer and opportunity lists' (crm.tables.FilterBarMixin).

Other pages link into the list with these parameters (a customer's tickets `?customer=`,
a quality alert's `?alert=`, the service report's drill-downs by product line, model,
fault, region and dates; the data-quality list `?quality=duration`)."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm.tables import FilterBarMixin, start_of_day
from service_feedback import report
from service_feedback.models import FlagKind, Ticket, TicketStatus
from service_feedback.report import BLANK
from service_feedback.services import phone_key

MATCHED_CHOICES = (("yes", _("Matched to a customer")), ("no", _("Waiting for a customer")))
QUALITY_CHOICES = (("duration", _("Duration problem")),)


class TicketFilter(FilterBarMixin, django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    status = django_filters.ChoiceFilter(
        choices=TicketStatus.choices, label=_("status"), empty_label=_("Any status")
    )
    matched = django_filters.ChoiceFilter(
        choices=MATCHED_CHOICES,
        method="filter_matched",
        label=_("customer"),
        empty_label=_("Matched or not"),
    )
    flag = django_filters.ChoiceFilter(
        choices=FlagKind.choices, method="filter_flag", label=_("flag"), empty_label=_("Any flag")
    )
    quality = django_filters.ChoiceFilter(
        choices=QUALITY_CHOICES,
        method="filter_quality",
        label=_("data quality"),
        empty_label=_("Any duration"),
    )
    product_line = django_filters.CharFilter(method="filter_exact", label=_("product line"))
    product_model = django_filters.CharFilter(method="filter_exact", label=_("product model"))
    fault_code = django_filters.CharFilter(method="filter_exact", label=_("fault code"))
    region = django_filters.CharFilter(method="filter_region", label=_("region"))
    opened_from = django_filters.DateFilter(
        method="opened_since",
        label=_("Opened from"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    opened_to = django_filters.DateFilter(
        method="opened_until",
        label=_("Opened to"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    customer = django_filters.UUIDFilter(field_name="customer__public_id", label=_("customer"))
    alert = django_filters.UUIDFilter(field_name="alert__public_id", label=_("quality alert"))
    # What the service report's figures count (service_feedback.report: one definition),
    # so each of its numbers opens exactly its tickets.
    first_response = django_filters.ChoiceFilter(
        choices=[("yes", _("Yes")), ("no", _("No"))],
        method="filter_responded",
        label=_("first response"),
    )
    first_response_max = django_filters.NumberFilter(
        method="filter_in_target", label=_("first response within (minutes)"), min_value=0
    )
    resolution = django_filters.ChoiceFilter(
        choices=[("yes", _("Yes"))], method="filter_resolved", label=_("resolved")
    )
    repeat = django_filters.ChoiceFilter(
        choices=[("yes", _("Yes"))], method="filter_repeat", label=_("repeat complaint")
    )

    class Meta:
        model = Ticket
        fields = [
            "q",
            "status",
            "matched",
            "flag",
            "quality",
            "product_line",
            "product_model",
            "fault_code",
            "region",
            "opened_from",
            "opened_to",
            "customer",
            "alert",
            "first_response",
            "first_response_max",
            "resolution",
            "repeat",
        ]

    # -- filter methods ------------------------------------------------------------------

    def search(self, queryset, name, value):
        """The ticket's subject, its requester or its customer's name (a part of any), or
        its id, phone or e-mail (whole)."""
        value = value.strip()
        if not value:
            return queryset
        # icontains compares UPPER(column) for every row; Chinese and digits have no case.
        lookup = "icontains" if value.upper() != value.lower() else "contains"
        match = (
            Q(**{f"subject__{lookup}": value})
            | Q(**{f"requester_name__{lookup}": value})
            | Q(**{f"customer__name__{lookup}": value})
            | Q(external_id=value)
            | Q(email=value.lower())
        )
        phone = phone_key(value) if any(c.isdigit() for c in value) else ""
        if phone:
            match |= Q(phone_key=phone)
        return queryset.filter(match)

    def filter_matched(self, queryset, name, value):
        return queryset.filter(customer__isnull=value != "yes")

    def filter_flag(self, queryset, name, value):
        return queryset.filter(flags__contains=[value])

    def filter_quality(self, queryset, name, value):
        return queryset.exclude(duration_issue="") if value == "duration" else queryset

    def filter_exact(self, queryset, name, value):
        """The value as written; "-" for none (the report's "not given" row)."""
        value = value.strip()
        if value == BLANK:
            return queryset.filter(**{name: ""})
        return queryset.filter(**{name: value}) if value else queryset

    def filter_region(self, queryset, name, value):
        """A province as written (广东省) or without its suffix (广东); "-" for none."""
        value = value.strip()
        if value == BLANK:
            return queryset.filter(province="")
        return queryset.filter(province__startswith=value) if value else queryset

    def filter_responded(self, queryset, name, value):
        return queryset.filter(report.responded_q() if value == "yes" else report.unresponded_q())

    def filter_in_target(self, queryset, name, value):
        return queryset.filter(report.in_target_q(int(value))) if value is not None else queryset

    def filter_resolved(self, queryset, name, value):
        return queryset.filter(report.resolved_q()) if value == "yes" else queryset

    def filter_repeat(self, queryset, name, value):
        return queryset.filter(report.repeat_q()) if value == "yes" else queryset

    def opened_since(self, queryset, name, value):
        return queryset.filter(opened_at__gte=start_of_day(value))

    def opened_until(self, queryset, name, value):
        return queryset.filter(opened_at__lt=start_of_day(value + timedelta(days=1)))

    # -- for the template ----------------------------------------------------------------

    @cached_property
    def status_options(self):
        return self.options("status")

    @cached_property
    def matched_options(self):
        return self.options("matched")

    @cached_property
    def flag_options(self):
        return self.options("flag")

    @cached_property
    def quality_options(self):
        return self.options("quality")
