"""The opportunity list's filter bar (django-filter): what a GET query string narrows the
list to. Rendered by hand like the lead and customer lists' (crm.tables.FilterBarMixin).

Stages are named by their code (`?stage=needs`, as the advance endpoint and the CSV name
them); the expected close month range takes months (`?close_from=2026-03`)."""

from __future__ import annotations

from datetime import date

import django_filters
from django import forms
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm.models import Membership
from crm.roles import OPPORTUNITY_ALL, OWNER_CHOICES
from crm.tables import FilterBarMixin, OwnerFilter
from opportunities.models import Opportunity, OpportunityStatus, Stage

VALID_CHOICES = (("yes", _("Valid only")), ("no", _("Not valid yet")))
# Members who can own opportunities are offered in the owner filter, up to this many.
OWNER_OPTIONS_MAX = 500


class MonthField(forms.DateField):
    """A month, as <input type="month"> sends it (2026-03), or a date in it."""

    input_formats = ["%Y-%m", "%Y-%m-%d"]

    def to_python(self, value):
        day = super().to_python(value)
        return day.replace(day=1) if day else day


class MonthFilter(django_filters.Filter):
    field_class = MonthField


def stage_choices():
    """The tenant's stages by code, in pipeline order (switched-off ones too: old
    opportunities may sit in them)."""
    return [(s.code, s.name) for s in Stage.objects.order_by("position", "id")]


class OpportunityFilter(FilterBarMixin, django_filters.FilterSet):
    """Filters on the visible opportunities. `membership` decides whether the owner filter
    exists (a rep sees only their own opportunities) and whose seats it offers."""

    q = django_filters.CharFilter(method="search", label=_("Search"))
    stage = django_filters.ChoiceFilter(
        field_name="stage__code",
        choices=stage_choices,
        label=_("stage"),
        empty_label=_("All stages"),
    )
    status = django_filters.ChoiceFilter(
        choices=OpportunityStatus.choices, label=_("status"), empty_label=_("Any status")
    )
    owner = OwnerFilter(
        queryset=Membership.objects.none(), label=_("owner"), empty_label=_("All owners")
    )
    valid = django_filters.ChoiceFilter(
        choices=VALID_CHOICES,
        method="filter_valid",
        label=_("valid"),
        empty_label=_("Valid or not"),
    )
    close_from = MonthFilter(
        method="closing_from",
        label=_("Expected close from"),
        widget=forms.DateInput(attrs={"type": "month"}),
    )
    close_to = MonthFilter(
        method="closing_to",
        label=_("Expected close to"),
        widget=forms.DateInput(attrs={"type": "month"}),
    )

    class Meta:
        model = Opportunity
        fields = ["q", "stage", "status", "owner", "valid", "close_from", "close_to"]

    def __init__(self, data=None, queryset=None, *, membership, **kwargs):
        super().__init__(data, queryset, **kwargs)
        if membership.role not in OPPORTUNITY_ALL:  # a rep: their own opportunities only
            del self.filters["owner"]
        else:
            self.filters["owner"].queryset = (
                Membership.objects.in_tenant(membership.tenant_id)
                .select_related("user")
                .only("id", "is_active", "user__first_name", "user__last_name", "user__username")
            )

    # -- filter methods ------------------------------------------------------------------

    def search(self, queryset, name, value):
        """The opportunity's or its customer's name."""
        value = value.strip()
        if not value:
            return queryset
        # icontains compares UPPER(column) for every row; Chinese and digits have no case.
        lookup = "icontains" if value.upper() != value.lower() else "contains"
        return queryset.filter(
            Q(**{f"name__{lookup}": value}) | Q(**{f"customer__name__{lookup}": value})
        )

    def filter_valid(self, queryset, name, value):
        return queryset.filter(is_valid=value == "yes")

    def closing_from(self, queryset, name, value: date):
        return queryset.filter(expected_close__gte=value)

    def closing_to(self, queryset, name, value: date):
        return queryset.filter(expected_close__lte=value)

    # -- for the template ----------------------------------------------------------------

    @property
    def has_owner_filter(self) -> bool:
        return "owner" in self.filters

    @cached_property
    def stage_options(self):
        return self.options("stage")

    @cached_property
    def status_options(self):
        return self.options("status")

    @cached_property
    def valid_options(self):
        return self.options("valid")

    def month_value(self, name: str) -> str:
        """The month as <input type="month"> shows it (2026-03), or what was typed."""
        self.form.is_valid()
        value = getattr(self.form, "cleaned_data", {}).get(name)
        if value:
            return f"{value:%Y-%m}"
        return self.form[name].value() or ""

    @property
    def close_from_value(self) -> str:
        return self.month_value("close_from")

    @property
    def close_to_value(self) -> str:
        return self.month_value("close_to")

    @cached_property
    def owner_options(self):
        return owner_options(self)


def owner_options(bar) -> list[tuple[str, str, bool]]:
    """The owner select's options (the active reps and managers, and the one chosen), or
    none past OWNER_OPTIONS_MAX people, where a drop-down stops being usable (?owner=
    still works). Read unordered up to the limit, then sorted here. `bar` is a FilterSet
    with an `owner` filter (the list's, the kanban's)."""
    if "owner" not in bar.filters:
        return []
    field = bar.form.fields["owner"]
    members = field.queryset.filter(role__in=OWNER_CHOICES, is_active=True)
    members = list(members.order_by()[: OWNER_OPTIONS_MAX + 1])
    if len(members) > OWNER_OPTIONS_MAX:
        return []
    current = bar.form["owner"].value()
    if current and str(current).isdigit() and int(current) not in {m.pk for m in members}:
        members += list(field.queryset.filter(pk=int(current)))
    members.sort(key=lambda m: (m.user.last_name, m.user.first_name, m.user.username))
    choices = [("", field.empty_label)]
    choices += [(m.pk, field.label_from_instance(m)) for m in members]
    return bar._selected("owner", choices)


class KanbanFilter(FilterBarMixin, django_filters.FilterSet):
    """The kanban's one filter: whose opportunities (managers, marketing, service, admins;
    a rep's kanban holds their own)."""

    owner = OwnerFilter(
        queryset=Membership.objects.none(), label=_("owner"), empty_label=_("The whole team")
    )

    class Meta:
        model = Opportunity
        fields = ["owner"]

    def __init__(self, data=None, queryset=None, *, membership, **kwargs):
        super().__init__(data, queryset, **kwargs)
        if membership.role not in OPPORTUNITY_ALL:
            del self.filters["owner"]
        else:
            self.filters["owner"].queryset = (
                Membership.objects.in_tenant(membership.tenant_id)
                .select_related("user")
                .only("id", "is_active", "user__first_name", "user__last_name", "user__username")
            )

    @property
    def has_owner_filter(self) -> bool:
        return "owner" in self.filters

    @cached_property
    def owner_options(self):
        return owner_options(self)
