"""The customer list's filter bar (django-filter): what a GET query string narrows the list
to. Rendered by hand like the lead list's (crm.tables.FilterBarMixin)."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm import normalize, search
from crm.models import Membership
from crm.roles import CUSTOMER_ALL, OWNER_CHOICES
from crm.tables import FilterBarMixin, OwnerFilter, start_of_day
from customers.models import Contact, Customer, CustomerLevel

# Members who can own customers (crm.roles.OWNER_CHOICES) are offered in the owner filter,
# up to OWNER_OPTIONS_MAX.
OWNER_OPTIONS_MAX = 500
NEVER = "never"


# The customer search's gram table (customers.models.CustomerSearchGram) and its key.
GRAMS = "customers_searchgram"
KEY = "customer_id"


class CustomerFilter(FilterBarMixin, django_filters.FilterSet):
    """Filters on the visible customers. `membership` decides whether the owner filter
    exists (a rep sees only their own customers) and whose seats it offers."""

    q = django_filters.CharFilter(method="search", label=_("Search"))
    level = django_filters.ChoiceFilter(
        choices=CustomerLevel.choices, label=_("level"), empty_label=_("All levels")
    )
    owner = OwnerFilter(
        queryset=Membership.objects.none(),
        label=_("owner"),
        empty_label=_("All owners"),
        null_label=_("No owner"),
    )
    contacted_from = django_filters.DateFilter(
        method="contacted_since",
        label=_("Last contact from"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    contacted_to = django_filters.DateFilter(
        method="contacted_until",
        label=_("Last contact to"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    never_contacted = django_filters.ChoiceFilter(
        choices=((NEVER, _("Never contacted")),),
        method="filter_never",
        label=_("last contact"),
        empty_label=_("Contacted or not"),
    )

    class Meta:
        model = Customer
        fields = ["q", "level", "owner", "contacted_from", "contacted_to", "never_contacted"]

    def __init__(self, data=None, queryset=None, *, membership, search_walk=False, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.tenant_id = membership.tenant_id
        # True: the name is checked row by row, no candidates (too many of them, or the
        # page's 50 rows read by id).
        self.search_walked = search_walk
        if membership.role not in CUSTOMER_ALL:  # a rep: their own customers only
            del self.filters["owner"]
        else:
            self.filters["owner"].queryset = (
                Membership.objects.in_tenant(membership.tenant_id)
                .select_related("user")
                .only("id", "is_active", "user__first_name", "user__last_name", "user__username")
            )

    # -- filter methods ------------------------------------------------------------------

    def search(self, queryset, name, value):
        """The customer's name, or a contact's phone: a whole number in any common writing
        (138 0013 8000, +86 13800138000 …) through the index contact_phone, or a run of at
        least four of its digits. A name's candidates come from the gram table
        (crm.search, `CustomerSearchGram`), at most crm.search.SEARCH_CAP of them; past that the
        names are read in the list's order (`search_walked`)."""
        value = value.strip()
        if not value:
            return queryset
        phone = normalize.parse_phone(value) if any(c.isdigit() for c in value) else None
        if phone is not None:
            contacts = Contact.objects.filter(phone_key=phone.e164).values("customer_id")
            return queryset.filter(pk__in=contacts)
        # icontains compares UPPER(column) for every row; Chinese and digits have no case.
        lookup = "icontains" if value.upper() != value.lower() else "contains"
        match = Q(**{f"name__{lookup}": value})
        digits = "".join(c for c in value if c.isdigit())
        if len(digits) >= 4 and not value.strip("0123456789 -+()"):
            # Part of a number: stored E.164 is +86 then the digits.
            contacts = Contact.objects.filter(phone__contains=digits).values("customer_id")
            return queryset.filter(match | Q(pk__in=contacts))
        if self.search_walked:
            return queryset.filter(match)
        sql, params = search.text_candidates(GRAMS, KEY, self.tenant_id, value.lower())
        ids = search.bounded_ids(sql, params, KEY, search.SEARCH_CAP)
        if ids is None:
            self.search_walked = True
            return queryset.filter(match)
        return queryset.filter(pk__in=ids).filter(match)

    def contacted_since(self, queryset, name, value):
        return queryset.filter(last_contact_at__gte=start_of_day(value))

    def contacted_until(self, queryset, name, value):
        return queryset.filter(last_contact_at__lt=start_of_day(value + timedelta(days=1)))

    def filter_never(self, queryset, name, value):
        return queryset.filter(last_contact_at__isnull=True) if value == NEVER else queryset

    # -- for the template ----------------------------------------------------------------

    @property
    def has_owner_filter(self) -> bool:
        return "owner" in self.filters

    @cached_property
    def level_options(self):
        return self.options("level")

    @cached_property
    def never_options(self):
        return self.options("never_contacted")

    @cached_property
    def owner_options(self):
        """The owner select's options (the active reps and managers), or none past
        OWNER_OPTIONS_MAX people, where a drop-down stops being usable (?owner= still
        works). Read unordered up to the limit, then sorted here."""
        if not self.has_owner_filter:
            return []
        field = self.form.fields["owner"]
        members = field.queryset.filter(role__in=OWNER_CHOICES, is_active=True)
        members = list(members.order_by()[: OWNER_OPTIONS_MAX + 1])
        if len(members) > OWNER_OPTIONS_MAX:
            return []
        current = self.form["owner"].value()
        if current and str(current).isdigit() and int(current) not in {m.pk for m in members}:
            members += list(field.queryset.filter(pk=int(current)))
        members.sort(key=lambda m: (m.user.last_name, m.user.first_name, m.user.username))
        choices = [("", field.empty_label), (field.null_value, field.null_label)]
        choices += [(m.pk, field.label_from_instance(m)) for m in members]
        return self._selected("owner", choices)
