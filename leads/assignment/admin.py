"""Assignment in the admin, tuned by the tenant admin and the sales managers: what each rep
is good at (rep profiles, F9), the SLA thresholds (F11), and why each lead went where it
went (decisions, F12). The policy draft with its score rules and replay is in
leads.assignment.admin_policy. Imported by leads/admin.py (admin autodiscovery)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.admin_base import (
    ReadOnlyTenantModelAdmin,
    TenantModelAdmin,
    acting_member,
    has_admin_role,
)
from crm.formatting import format_date
from crm.models import Membership
from crm.roles import ASSIGNERS, OWNERS
from crm.tenancy import tenant_context
from leads.assignment.profiles import rep_profiles_create_missing
from leads.models import (
    AssignmentDecision,
    Industry,
    RepProfile,
    SlaPolicy,
    Zone,
)


def may_administer(request) -> bool:
    """Sales managers tune assignment too (weights, profiles, SLA thresholds, replay)."""
    return has_admin_role(request, ASSIGNERS)


def in_tenant(obj):
    """The object's own tenant scope: a tenant admin is in it already; the platform
    superuser, in all-tenants mode, must not let a service count other tenants' rows."""
    return tenant_context(obj.tenant)


def _split_list(text: str) -> list[str]:
    from leads.assignment.scoring import split_values

    seen: dict[str, None] = {}
    for value in split_values(text):
        seen.setdefault(value, None)
    return list(seen)


class ListTextField(forms.CharField):
    """A JSON list of short texts, edited as text separated by commas or new lines."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "cols": 60}))
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value):
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return _split_list(super().to_python(value))

    def has_changed(self, initial, data):
        return list(initial or []) != self.to_python(data)


class RepProfileForm(forms.ModelForm):
    industries = forms.MultipleChoiceField(
        label=_("industries"),
        choices=Industry.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: the rep takes every industry."),
    )
    provinces = ListTextField(
        label=_("provinces"),
        help_text=_("Separated by commas or one per line, e.g. 浙江省, 江苏省. Empty: everywhere."),
    )
    cities = ListTextField(
        label=_("cities"), help_text=_("Separated by commas or one per line, e.g. 宁波, 苏州.")
    )
    product_lines = ListTextField(
        label=_("product lines"),
        help_text=_(
            "Separated by commas or one per line; matched against the lead's tags and "
            "enquiry, e.g. 影像设备, DR, CT."
        ),
    )

    class Meta:
        model = RepProfile
        fields = [
            "membership",
            "industries",
            "provinces",
            "cities",
            "product_lines",
            "response_tier",
            "cycle_preference",
            "capacity",
            "share_weight",
            "is_available",
            "unavailable_until",
            "tenant",
        ]


@admin.register(RepProfile)
class RepProfileAdmin(TenantModelAdmin):
    """What each rep is good at and how much they take (F9), kept by the tenant admin."""

    admin_roles = ASSIGNERS

    form = RepProfileForm
    change_list_template = "admin/leads/repprofile/change_list.html"
    list_display = [
        "rep",
        "industries_text",
        "regions_text",
        "product_lines_text",
        "response_tier",
        "capacity_text",
        "share_weight",
        "availability",
        "zone",
        "last_assigned_at",
    ]
    list_filter = ["zone", "is_available", "response_tier", "cycle_preference"]
    list_select_related = ["membership__user", "tenant"]
    search_fields = [
        "membership__user__username",
        "membership__user__first_name",
        "membership__user__last_name",
    ]
    readonly_fields = [
        "zone",
        "zone_since",
        "late_streak",
        "on_time_streak",
        "training_acknowledged_at",
        "last_assigned_at",
    ]
    fieldsets = [
        (None, {"fields": ["membership"]}),
        (
            _("What the rep is good at"),
            {
                "fields": [
                    "industries",
                    "provinces",
                    "cities",
                    "product_lines",
                    "response_tier",
                    "cycle_preference",
                ]
            },
        ),
        (
            _("How much they take"),
            {"fields": ["capacity", "share_weight", "is_available", "unavailable_until"]},
        ),
        (
            _("Zones and streaks"),
            {
                "fields": [
                    "zone",
                    "zone_since",
                    "late_streak",
                    "on_time_streak",
                    "training_acknowledged_at",
                    "last_assigned_at",
                ],
                "description": _(
                    "Kept by the engine. To end an observation zone at once, select the rep "
                    "in the list and run “Lift the observation zone”."
                ),
            },
        ),
    ]
    actions = ["lift_zone", "create_missing_profiles"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "membership"] if obj is not None else fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "membership":
            reps = Membership.objects.filter(role__in=OWNERS).select_related("user")
            if not request.user.is_superuser:
                reps = reps.filter(tenant=request.tenant, rep_profile__isnull=True)
            kwargs["queryset"] = reps.order_by("user__username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("rep"), ordering="membership__user__username")
    def rep(self, obj):
        return obj.membership.display_name

    @admin.display(description=_("industries"))
    def industries_text(self, obj):
        labels = dict(Industry.choices)
        return "、".join(str(labels.get(i, i)) for i in obj.industries) or "—"

    @admin.display(description=_("regions"))
    def regions_text(self, obj):
        return "、".join([*obj.provinces, *obj.cities]) or "—"

    @admin.display(description=_("product lines"))
    def product_lines_text(self, obj):
        return "、".join(obj.product_lines) or "—"

    @admin.display(description=_("capacity"), ordering="capacity")
    def capacity_text(self, obj):
        return _("policy default") if obj.capacity is None else obj.capacity

    @admin.display(description=_("available"), boolean=False)
    def availability(self, obj):
        if not obj.is_available:
            return _("Away")
        if obj.unavailable_until is not None:
            return _("Away until %(day)s") % {"day": format_date(obj.unavailable_until)}
        return _("Available")

    def get_urls(self):
        urls = [
            path(
                "create-for-all-reps/",
                self.admin_site.admin_view(self.create_all_view),
                name="leads_repprofile_create_all",
            )
        ]
        return urls + super().get_urls()

    def _create_missing(self, request) -> int:
        """A profile with the defaults for every active rep of the tenant without one."""
        tenant = request.tenant
        if tenant is None:
            return 0
        with tenant_context(tenant):
            return rep_profiles_create_missing(
                tenant=tenant, acting_member=acting_member(request, tenant)
            )

    def _report_created(self, request, created: int) -> None:
        if created:
            self.message_user(
                request,
                ngettext(
                    "%(n)d rep profile created with the defaults.",
                    "%(n)d rep profiles created with the defaults.",
                    created,
                )
                % {"n": created},
            )
        else:
            self.message_user(request, _("Every rep already has a profile."), messages.INFO)

    def create_all_view(self, request):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:leads_repprofile_changelist"))
        if not self.has_add_permission(request):
            raise PermissionDenied
        self._report_created(request, self._create_missing(request))
        return HttpResponseRedirect(reverse("admin:leads_repprofile_changelist"))

    @admin.action(description=_("Create profiles for all reps (those without one)"))
    def create_missing_profiles(self, request, queryset):
        self._report_created(request, self._create_missing(request))

    @admin.action(description=_("Lift the observation zone (dispatch resumes at once)"))
    def lift_zone(self, request, queryset):
        from leads.assignment.zones import zone_lift

        lifted = 0
        for profile in queryset.select_related("membership__user", "membership__tenant"):
            with in_tenant(profile):
                lifted += zone_lift(
                    tenant=profile.tenant,
                    acting_member=acting_member(request, profile.tenant),
                    rep=profile.membership,
                )
        self.message_user(
            request,
            ngettext(
                "%(n)d rep is back to normal dispatch.",
                "%(n)d reps are back to normal dispatch.",
                lifted,
            )
            % {"n": lifted},
        )
        skipped = queryset.exclude(zone__in=[Zone.OBSERVATION, Zone.PROBATION]).count()
        if skipped and not lifted:
            self.message_user(request, _("None of them was in a zone."), messages.INFO)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantModelAdmin):
    """The tenant's SLA thresholds (F11): one row per tenant."""

    admin_roles = ASSIGNERS

    list_display = [
        "name",
        "a_unassigned_minutes",
        "unassigned_minutes",
        "unverified_hours",
        "unverified_escalation_hours",
        "no_followup_hours",
        "second_touch_hours",
        "sales_model",
        "is_active",
    ]
    list_display_links = ["name"]

    @admin.display(description=_("policy"))
    def name(self, obj):
        return str(obj)

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        if request.user.is_superuser:
            return True  # one per tenant is then checked by the form (the tenant field)
        tenant = getattr(request, "tenant", None)
        return tenant is not None and not SlaPolicy.objects.filter(tenant=tenant).exists()


@admin.register(AssignmentDecision)
class AssignmentDecisionAdmin(ReadOnlyTenantModelAdmin):
    """Why each lead went where it went (F12): read-only, as the engine wrote it."""

    admin_roles = ASSIGNERS

    list_display = [
        "decided_at",
        "lead_link",
        "kind",
        "outcome",
        "chosen_name",
        "policy_version",
        "lead_score",
    ]
    list_filter = ["kind", "outcome", "hot_zone", "policy"]
    list_select_related = ["lead", "chosen__user", "policy", "tenant"]
    search_fields = ["lead__company", "lead__contact_name", "lead__phone"]
    date_hierarchy = "decided_at"
    show_full_result_count = False
    fields = [
        "lead_link",
        "decided_at",
        "kind",
        "outcome",
        "chosen_name",
        "previous_owner",
        "policy_version",
        "lead_score",
        "score_table",
        "explanation",
        "relaxed",
        "hot_zone",
        "seed",
        "reason",
        "actor",
        "candidates_table",
    ]
    readonly_fields = fields

    @admin.display(description=_("lead"))
    def lead_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("leads:detail", args=[obj.lead.public_id]), obj.lead
        )

    @admin.display(description=_("chosen rep"))
    def chosen_name(self, obj):
        return obj.chosen.display_name if obj.chosen_id and obj.chosen else "—"

    @admin.display(description=_("policy version"), ordering="policy__version")
    def policy_version(self, obj):
        return obj.policy.version if obj.policy_id and obj.policy.version else "—"

    @admin.display(description=_("score breakdown"))
    def score_table(self, obj):
        if not obj.score_breakdown:
            return "—"
        return format_html(
            "<table><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{:+d}</td></tr>",
                ((hit.get("label", ""), int(hit.get("points", 0))) for hit in obj.score_breakdown),
            ),
        )

    @admin.display(description=_("why"))
    def explanation(self, obj):
        from leads.assignment.explain import explain

        words = explain(obj)
        return format_html(
            "<strong>{}</strong><ul>{}</ul>",
            words.headline,
            format_html_join("", "<li>{}</li>", ((line,) for line in words.lines if line)),
        )

    @admin.display(description=_("candidates"))
    def candidates_table(self, obj):
        from leads.assignment.explain import explain
        from leads.assignment.explain_texts import number

        rows = explain(obj).candidates
        if not rows:
            return "—"
        head = format_html(
            "<thead><tr>{}</tr></thead>",
            format_html_join(
                "",
                "<th>{}</th>",
                (
                    (label,)
                    for label in (
                        _("rep"),
                        _("verdict"),
                        _("fit"),
                        _("score"),
                        _("expected"),
                        _("received"),
                        _("shortfall"),
                        _("hot"),
                        _("best band"),
                    )
                ),
            ),
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    format_html("<strong>{} ✓</strong>", row.name) if row.chosen else row.name,
                    row.text,
                    row.fit_text or "—",
                    number(row.score),
                    number(row.expected),
                    "—" if row.received is None else row.received,
                    number(row.shortfall),
                    "—" if row.hot is None else (_("yes") if row.hot else _("no")),
                    _("yes") if row.band else "",
                )
                for row in rows
            ),
        )
        return format_html(
            '<table class="decision-candidates">{}<tbody>{}</tbody></table>', head, body
        )
