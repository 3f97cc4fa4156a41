"""The lead list's filter bar (django-filter): what a GET query string narrows the list to."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm import search as gram_search
from crm.models import Membership
from crm.roles import LEAD_ALL, OWNER_CHOICES
from crm.tables import FilterBarMixin, OwnerFilter, start_of_day
from leads import search as lead_search
from leads.models import Channel, InvalidReason, Lead, LeadStatus, SourceGrade, Tag, Verification
from leads.reports import quality as reports

REVISIT_CHOICES = (("yes", _("Revisits only")), ("no", _("No revisits")))
SUSPECT_CHOICES = (("yes", _("Suspects only")), ("no", _("No suspects")))
# Unassigned new leads: in the pool (for a manager to hand out) or waiting for the retry.
POOL_CHOICES = (
    ("any", _("In the pool or waiting")),
    ("pool", _("In the pool")),
    ("waiting", _("Waiting for a rep")),
)
# The lead-quality report's links (leads/reports/quality.py holds the definitions).
VERIFICATION_CHOICES = (
    ("valid", _("Valid (either outcome)")),
    ("invalid", _("Invalid (either outcome)")),
    ("none", _("Not verified")),
    *Verification.choices,
)
VERIFIED_24H_CHOICES = (("yes", _("Verified within 24 h")), ("no", _("Not verified within 24 h")))
FOLLOWED_UP_CHOICES = (
    ("yes", _("Valid, followed up within 72 h")),
    ("no", _("Valid, not followed up within 72 h")),
)
FIRST_TOUCH_CHOICES = (("yes", _("Assigned and touched")), ("no", _("Not touched yet")))

# Members who can hold leads (crm.roles.OWNER_CHOICES) are offered in the owner filter, up
# to OWNER_OPTIONS_MAX.
OWNER_OPTIONS_MAX = 500


class LeadFilter(FilterBarMixin, django_filters.FilterSet):
    """Filters on the visible leads. `membership` decides whether the owner filter exists
    (reps see only their own leads, so it would be pointless) and whose seats it offers.

    Tenant-scoped models (Channel, Tag) are queried through their scoped managers, which
    apply the tenant when the query runs; Membership has no scoped manager (row-level
    security narrows it in the database), so its choices are narrowed here explicitly.
    """

    q = django_filters.CharFilter(method="search", label=_("Search"))
    status = django_filters.ChoiceFilter(
        choices=LeadStatus.choices, label=_("status"), empty_label=_("All statuses")
    )
    channel = django_filters.ModelChoiceFilter(
        queryset=Channel.objects.only("id", "name"),
        label=_("channel"),
        empty_label=_("All channels"),
    )
    tag = django_filters.ModelChoiceFilter(
        field_name="tags",
        queryset=Tag.objects.only("id", "name"),
        label=_("tag"),
        empty_label=_("All tags"),
    )
    owner = OwnerFilter(
        queryset=Membership.objects.none(),
        label=_("owner"),
        empty_label=_("All owners"),
        null_label=_("Unassigned"),
    )
    created_from = django_filters.DateFilter(
        method="created_since",
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    created_to = django_filters.DateFilter(
        method="created_until",
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    revisit = django_filters.ChoiceFilter(
        choices=REVISIT_CHOICES,
        method="filter_revisit",
        label=_("revisit"),
        empty_label=_("Revisits and originals"),
    )
    suspect = django_filters.ChoiceFilter(
        choices=SUSPECT_CHOICES,
        method="filter_suspect",
        label=_("suspect"),
        empty_label=_("Suspect or not"),
    )
    pool = django_filters.ChoiceFilter(
        choices=POOL_CHOICES,
        method="filter_pool",
        label=_("pool"),
        empty_label=_("Pool or not"),
    )
    source_grade = django_filters.ChoiceFilter(
        choices=SourceGrade.choices, label=_("source grade"), empty_label=_("All grades")
    )
    verification = django_filters.ChoiceFilter(
        choices=VERIFICATION_CHOICES,
        method="filter_verification",
        label=_("verification"),
        empty_label=_("Verified or not"),
    )
    verified_24h = django_filters.ChoiceFilter(
        choices=VERIFIED_24H_CHOICES,
        method="filter_verified_24h",
        label=_("verified within 24 h"),
        empty_label=_("Verified within 24 h or not"),
    )
    invalid_reason = django_filters.ModelChoiceFilter(
        queryset=InvalidReason.objects.only("id", "name"),
        label=_("invalid reason"),
        empty_label=_("All invalid reasons"),
        null_label=_("No reason given"),
    )
    followed_up = django_filters.ChoiceFilter(
        choices=FOLLOWED_UP_CHOICES,
        method="filter_followed_up",
        label=_("follow-up within 72 h"),
        empty_label=_("Followed up within 72 h or not"),
    )
    first_touch = django_filters.ChoiceFilter(
        choices=FIRST_TOUCH_CHOICES,
        method="filter_first_touch",
        label=_("first touch"),
        empty_label=_("Touched or not"),
    )

    class Meta:
        model = Lead
        fields = [
            "q",
            "status",
            "channel",
            "tag",
            "owner",
            "created_from",
            "created_to",
            "revisit",
            "suspect",
            "pool",
            "source_grade",
            "verification",
            "verified_24h",
            "invalid_reason",
            "followed_up",
            "first_touch",
        ]

    def __init__(self, data=None, queryset=None, *, membership, search_walk=False, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.tenant_id = membership.tenant_id
        # True: every row is checked, no candidates (more of them than crm.search's
        # SEARCH_CAP, or the page's 50 rows read by id).
        self.search_walked = search_walk
        if membership.role not in LEAD_ALL:  # a rep: their own leads only
            del self.filters["owner"]
            del self.filters["pool"]  # a rep sees their own leads: none is in the pool
        else:
            # Any seat of the tenant filters (a report links to a former rep's leads);
            # the select offers the active ones who can hold leads (owner_options).
            self.filters["owner"].queryset = (
                Membership.objects.in_tenant(membership.tenant_id)
                .select_related("user")
                .only("id", "is_active", "user__first_name", "user__last_name", "user__username")
            )

    # -- filter methods ------------------------------------------------------------------

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        term = lead_search.Term(value)
        if self.search_walked:
            return queryset.filter(term.walk_q())
        ids = term.candidate_ids(self.tenant_id, gram_search.SEARCH_CAP)
        if ids is None:
            self.search_walked = True
            return queryset.filter(term.walk_q())
        return queryset.filter(pk__in=ids).filter(term.walk_q())

    def created_since(self, queryset, name, value):
        # A range on the column itself (not created_at__date) keeps the index usable.
        return queryset.filter(created_at__gte=start_of_day(value))

    def created_until(self, queryset, name, value):
        return queryset.filter(created_at__lt=start_of_day(value + timedelta(days=1)))

    def filter_revisit(self, queryset, name, value):
        return queryset.filter(revisit_of__isnull=value != "yes")

    def filter_suspect(self, queryset, name, value):
        return queryset.filter(is_suspect=value == "yes")

    def filter_pool(self, queryset, name, value):
        unassigned = queryset.filter(status=LeadStatus.NEW, owner__isnull=True)
        if value == "pool":
            return unassigned.filter(dispatch_after__isnull=True)
        if value == "waiting":
            return unassigned.filter(dispatch_after__isnull=False)
        return unassigned

    def filter_verification(self, queryset, name, value):
        if value == "valid":
            return queryset.filter(reports.valid_q())
        if value == "invalid":
            return queryset.filter(reports.invalid_q())
        if value == "none":
            return queryset.filter(reports.unverified_q())
        return queryset.filter(verification=value)

    def filter_verified_24h(self, queryset, name, value):
        within = reports.verified_24h_q()
        return queryset.filter(within if value == "yes" else ~within)

    def filter_followed_up(self, queryset, name, value):
        followed = reports.followed_up_q()
        if value == "yes":
            return queryset.filter(followed)
        return queryset.filter(reports.valid_q()).exclude(followed)

    def filter_first_touch(self, queryset, name, value):
        touched = reports.touched_q()
        return queryset.filter(touched if value == "yes" else ~touched)

    # -- for the template ----------------------------------------------------------------

    @property
    def has_owner_filter(self) -> bool:
        return "owner" in self.filters

    @cached_property
    def status_options(self):
        return self.options("status")

    @cached_property
    def channel_options(self):
        return self.options("channel")

    @cached_property
    def tag_options(self):
        return self.options("tag")

    @cached_property
    def owner_options(self):
        """The owner select's options; none (no select, though ?owner= still works) past
        OWNER_OPTIONS_MAX people, where a drop-down stops being usable and costs more
        than the rest of the page. Read unordered up to the limit (ORDER BY would sort
        every seat first), then sorted here."""
        if not self.has_owner_filter:
            return []
        field = self.form.fields["owner"]
        members = field.queryset.filter(role__in=OWNER_CHOICES, is_active=True)
        members = list(members.order_by()[: OWNER_OPTIONS_MAX + 1])
        if len(members) > OWNER_OPTIONS_MAX:
            return []
        current = self.form["owner"].value()
        if current and str(current).isdigit() and int(current) not in {m.pk for m in members}:
            # A deactivated seat's leads, opened from the report: keep it selectable, so
            # that filtering further does not drop it.
            members += list(field.queryset.filter(pk=int(current)))
        members.sort(key=lambda m: (m.user.last_name, m.user.first_name, m.user.username))
        choices = [("", field.empty_label), (field.null_value, field.null_label)]
        choices += [(m.pk, field.label_from_instance(m)) for m in members]
        return self._selected("owner", choices)

    @cached_property
    def revisit_options(self):
        return self.options("revisit")

    @cached_property
    def suspect_options(self):
        return self.options("suspect")

    @cached_property
    def pool_options(self):
        return self.options("pool") if "pool" in self.filters else []

    # The lead-quality report's filters (its figures link here with them), grouped.
    QUALITY_FILTERS = (
        "source_grade",
        "verification",
        "verified_24h",
        "invalid_reason",
        "followed_up",
        "first_touch",
    )

    @cached_property
    def quality_selects(self) -> list[tuple[str, str, list]]:
        """(name, label, options) of the report's filters, so that a list opened from a
        report figure shows what narrows it and keeps it when filtered further."""
        return [(n, self.filters[n].label, self.options(n)) for n in self.QUALITY_FILTERS]
