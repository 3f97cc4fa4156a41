"""Tenant admin (F45): intake (channels, mapping rules, tags, the inbox) and assignment
(rep profiles, the policy draft with its score rules and replay, decisions, SLA)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.admin import ReadOnlyTenantModelAdmin, TenantModelAdmin, has_admin_role
from crm.audit import audit
from crm.formatting import format_date, format_phone
from crm.models import Membership, Role
from crm.tenancy import tenant_context
from leads.intake import mapping
from leads.intake.services import channel_mapping_problems, inbound_event_reprocess
from leads.messages import field_label, intake_text
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    Channel,
    ChannelType,
    EventStatus,
    ImportBatch,
    InboundEvent,
    Industry,
    InvalidReason,
    Lead,
    LeadEvent,
    ReplayRun,
    ReplayStatus,
    RepProfile,
    ScoreField,
    ScoreRule,
    SlaPolicy,
    Tag,
    TaggingRule,
    Zone,
)


def public_url(request, name: str, key: str) -> str:
    return request.build_absolute_uri(reverse(name, args=[key]))


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = [
            "name",
            "type",
            "default_grade",
            "is_active",
            "tags",
            "preset",
            "mapping",
            "wecom_corp_id",
            "wecom_token",
            "wecom_aes_key",
            "tenant",
        ]
        widgets = {
            "mapping": forms.Textarea(attrs={"rows": 8, "cols": 90, "class": "crm-monospace"})
        }

    def clean_mapping(self):
        rules = self.cleaned_data.get("mapping")
        if rules in (None, ""):
            return []
        problems = mapping.validate_rules(rules)
        if problems:
            raise forms.ValidationError(problems)
        return rules

    def clean(self):
        data = super().clean()
        if data.get("type") == ChannelType.WECOM:
            for name in ("wecom_corp_id", "wecom_token", "wecom_aes_key"):
                if not data.get(name):
                    self.add_error(name, _("Required for a WeCom channel."))
            aes = data.get("wecom_aes_key") or ""
            if aes and len(aes) != 43:
                self.add_error("wecom_aes_key", _("WeCom's EncodingAESKey has 43 characters."))
        return data


@admin.register(Channel)
class ChannelAdmin(TenantModelAdmin):
    form = ChannelForm
    list_display = ["name", "type", "default_grade", "is_active", "webhook_url", "created_at"]
    list_filter = ["type", "is_active", "default_grade"]
    search_fields = ["name"]
    filter_horizontal = ["tags"]
    readonly_fields = ["key", "webhook_url", "form_url", "mapping_problems"]
    actions = ["rotate_secret"]
    fieldsets = [
        (None, {"fields": ["name", "type", "default_grade", "is_active", "tags"]}),
        (_("Addresses"), {"fields": ["key", "webhook_url", "form_url"]}),
        (_("Mapping"), {"fields": ["preset", "mapping", "mapping_problems"]}),
        (
            _("WeCom callback"),
            {"fields": ["wecom_corp_id", "wecom_token", "wecom_aes_key"], "classes": ["collapse"]},
        ),
    ]

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, obj):
        return public_url(self._request, "hook", obj.key) if obj.pk else "—"

    @admin.display(description=_("hosted form"))
    def form_url(self, obj):
        if not obj.pk:
            return "—"
        url = public_url(self._request, "lead_form", obj.key)
        qr = reverse("lead_form_qr", args=[obj.key, "svg"])
        return format_html(
            '<a href="{}" target="_blank">{}</a> · <a href="{}" target="_blank">{}</a>',
            url,
            url,
            qr,
            _("QR code"),
        )

    @admin.display(description=_("field mapping problems"))
    def mapping_problems(self, obj):
        """What the mapping could not fill lately: the leads were made without it."""
        if not obj.pk:
            return "—"
        problems = channel_mapping_problems(channel=obj)
        if not problems:
            return _("None in the last %(days)d days.") % {"days": problems.days}
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    field_label(p["field"]),
                    p["value"] or "—",
                    p["problem"],
                    p["count"],
                    p["last"].strftime("%Y-%m-%d %H:%M"),
                )
                for p in problems
            ),
        )
        return format_html(
            '<table data-testid="mapping-problems"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table><p>{}</p>",
            _("field"),
            _("value received"),
            _("problem"),
            _("events"),
            _("last seen"),
            rows,
            _(
                "The last %(days)d days. The leads were made without these values (they are "
                "kept on the lead and its event): add them to the rule's map, with null for "
                "“leave empty”."
            )
            % {"days": problems.days},
        )

    def get_queryset(self, request):
        self._request = request
        return super().get_queryset(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        self._request = request
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # The secret is shown this once; afterwards only a rotation reveals a new one.
            messages.warning(
                request,
                format_html(
                    _(
                        "Channel created. Webhook URL: <code>{}</code> · secret (shown only now): "
                        "<code>{}</code>"
                    ),
                    public_url(request, "hook", obj.key),
                    obj.secret,
                ),
            )

    @admin.action(description=_("Rotate the secret (the old one stops working)"))
    def rotate_secret(self, request, queryset):
        for channel in queryset:
            channel.rotate_secret()
            channel.save(update_fields=["secret"])
            audit(
                tenant=channel.tenant,
                actor=request.user,
                action="channel.rotate_secret",
                obj=channel,
            )
            messages.warning(
                request,
                format_html(
                    _("New secret of {} (shown only now): <code>{}</code>"),
                    channel.name,
                    channel.secret,
                ),
            )


@admin.register(Tag)
class TagAdmin(TenantModelAdmin):
    list_display = ["name", "color_badge"]
    search_fields = ["name"]

    # The pages' badge colours (Bootstrap 5.3), for the admin, which does not load Bootstrap.
    SWATCHES = {
        "primary": "#0d6efd",
        "info": "#0dcaf0",
        "success": "#198754",
        "warning": "#ffc107",
        "danger": "#dc3545",
        "secondary": "#6c757d",
        "dark": "#212529",
    }

    @admin.display(description=_("colour"), ordering="color")
    def color_badge(self, obj):
        return format_html(
            '<svg class="crm-swatch" width=".9em" height=".9em" viewBox="0 0 9 9"'
            ' aria-hidden="true">'
            '<rect width="9" height="9" rx="2" fill="{}"/></svg> {}',
            self.SWATCHES.get(obj.color, "#6c757d"),
            obj.get_color_display(),
        )


@admin.register(TaggingRule)
class TaggingRuleAdmin(TenantModelAdmin):
    list_display = ["tag", "keywords", "is_active"]
    list_filter = ["is_active", "tag"]
    list_select_related = ["tag", "tenant"]


class MappingProblemFilter(admin.SimpleListFilter):
    title = _("field mapping problems")
    parameter_name = "mapping_problems"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(mapping_issues=[])
        if self.value() == "no":
            return queryset.filter(mapping_issues=[])
        return queryset


@admin.register(InboundEvent)
class InboundEventAdmin(TenantModelAdmin):
    list_display = [
        "received_at",
        "channel",
        "source",
        "status",
        "short_error",
        "lead_link",
        "attempts",
    ]
    list_filter = ["status", "source", "channel", MappingProblemFilter]
    list_select_related = ["channel", "lead", "tenant"]
    search_fields = ["idempotency_key", "error", "public_id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["reprocess"]
    fields = [
        "channel",
        "source",
        "received_at",
        "status",
        "error_shown",
        "mapping_problems",
        "attempts",
        "processed_at",
        "lead_link",
        "idempotency_key",
        "headers_pretty",
        "raw_body",
        "payload_pretty",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the inbox is the record of what arrived

    @admin.display(description=_("error"))
    def short_error(self, obj):
        text = obj.error_text
        if obj.mapping_issues and not text:
            text = _("Field mapping problems: %(n)d") % {"n": len(obj.mapping_issues)}
        return (text[:80] + "…") if len(text) > 80 else text

    @admin.display(description=_("error"))
    def error_shown(self, obj):
        return obj.error_text or "—"

    @admin.display(description=_("field mapping problems"))
    def mapping_problems(self, obj):
        if not obj.mapping_issues:
            return "—"
        return format_html(
            '<ul data-testid="mapping-issues">{}</ul>',
            format_html_join("", "<li>{}</li>", ((intake_text(i),) for i in obj.mapping_issues)),
        )

    @admin.display(description=_("lead"))
    def lead_link(self, obj):
        if obj.lead_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("leads:detail", args=[obj.lead.public_id]), obj.lead
        )

    @admin.display(description=_("headers"))
    def headers_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, ensure_ascii=False, indent=2))

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj):
        if obj.payload is None:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, ensure_ascii=False, indent=2))

    @admin.action(description=_("Re-process the selected failed events"))
    def reprocess(self, request, queryset):
        # Read the selection once, before re-processing changes the events' status: the
        # queryset may be filtered by that status, and counting it again would miss them.
        selected = list(queryset.order_by().values_list("pk", "status"))
        failed = list(
            InboundEvent.objects.filter(
                pk__in=[pk for pk, status in selected if status == EventStatus.FAILED]
            )
        )
        queued = sum(inbound_event_reprocess(event=e) for e in failed)
        unreadable = len(failed) - queued  # refused on receipt, the body still unreadable
        skipped = len(selected) - len(failed)
        if queued:
            messages.success(
                request,
                ngettext(
                    "%(n)d failed event queued again.", "%(n)d failed events queued again.", queued
                )
                % {"n": queued},
            )
        if skipped:
            level = messages.info if queued else messages.warning
            level(
                request,
                ngettext(
                    "%(n)d selected event was not failed and was left as it is: only failed "
                    "events are re-processed.",
                    "%(n)d selected events were not failed and were left as they are: only "
                    "failed events are re-processed.",
                    skipped,
                )
                % {"n": skipped},
            )
        if unreadable:
            messages.warning(
                request,
                ngettext(
                    "%(n)d selected event was refused on receipt and its body still cannot "
                    "be read: it stays failed (see its error); the sender must send it again.",
                    "%(n)d selected events were refused on receipt and their bodies still "
                    "cannot be read: they stay failed (see their errors); the sender must send "
                    "them again.",
                    unreadable,
                )
                % {"n": unreadable},
            )


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    extra = 0
    fields = ["at", "kind_label", "what"]
    readonly_fields = fields
    can_delete = False

    @admin.display(description=_("kind"))
    def kind_label(self, obj):
        return obj.get_kind_display()

    @admin.display(description=_("details"))
    def what(self, obj):
        return obj.text or "—"

    def has_view_permission(self, request, obj=None):
        # Read by whoever reads the lead in the admin (tenant admins hold no Django
        # permissions: their rights are their role).
        return has_admin_role(request, LeadAdmin.admin_roles)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(TenantModelAdmin):
    list_display = [
        "created_at",
        "company",
        "contact_name",
        "phone_text",
        "channel",
        "status",
        "is_suspect",
        "revisit_of",
    ]
    list_filter = ["status", "channel", "is_suspect", "source_grade"]
    search_fields = ["company", "contact_name", "phone"]
    list_select_related = ["channel", "revisit_of", "tenant"]
    show_full_result_count = False
    # Stored as codes and parameters: shown in words (the *_text fields) instead.
    exclude = ["suspect_reasons", "utm"]
    readonly_fields = [
        "channel",
        "revisit_of",
        "created_at",
        "suspect_reasons_text",
        "utm_text",
        "external_id",
    ]
    inlines = [LeadEventInline]

    @admin.display(description=_("phone"), ordering="phone")
    def phone_text(self, obj):
        return format_phone(obj.phone) or "—"

    @admin.display(description=_("suspect reasons"))
    def suspect_reasons_text(self, obj):
        return "；".join(obj.suspect_reason_texts()) or "—"

    @admin.display(description=_("UTM parameters"))
    def utm_text(self, obj):
        from leads.intake.services import UTM_LABELS

        parts = [f"{UTM_LABELS.get(k, k)}: {v}" for k, v in (obj.utm or {}).items()]
        return "；".join(parts) or "—"

    def has_add_permission(self, request):
        return False  # leads arrive through channels (a manual entry is a channel too)


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["created_at", "filename", "channel", "status", "uploaded_by"]
    list_select_related = ["channel", "uploaded_by", "tenant"]
    exclude = ["rows"]


# --- Assignment (F8–F10, F12, F14) ------------------------------------------------------------


# Sales managers tune assignment too (weights, profiles, SLA thresholds, replay).
ASSIGNMENT_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


def _may_administer(request) -> bool:
    return has_admin_role(request, ASSIGNMENT_ROLES)


def _in_tenant(obj):
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

    admin_roles = ASSIGNMENT_ROLES

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
            reps = Membership.objects.filter(role=Role.REP).select_related("user")
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
            reps = (
                Membership.objects.in_tenant(tenant)
                .active()
                .filter(role=Role.REP, rep_profile__isnull=True)
                .select_related("user")
            )
            created = 0
            for membership in reps:
                profile, made = RepProfile.objects.get_or_create(
                    membership=membership, defaults={"tenant": tenant}
                )
                if made:
                    created += 1
                    audit(tenant=tenant, actor=request.user, action="admin.add", obj=profile)
            return created

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
            with _in_tenant(profile):
                lifted += zone_lift(profile.membership, actor=request.user)
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


class ScoreRuleForm(forms.ModelForm):
    field = forms.ChoiceField(
        label=_("field"),
        choices=[("", "---------"), *ScoreField.choices],
        required=False,
        help_text=ScoreRule._meta.get_field("field").help_text,
    )

    class Meta:
        model = ScoreRule
        fields = ["position", "label", "field", "operator", "value", "points"]
        widgets = {
            "value": forms.TextInput(attrs={"size": 24}),
            "label": forms.TextInput(attrs={"size": 18}),
            "position": forms.NumberInput(attrs={"class": "crm-w-4em"}),
            "points": forms.NumberInput(attrs={"class": "crm-w-5em"}),
        }


class ScoreRuleInline(admin.TabularInline):
    """The lead score's lines; editable on the draft only. `ScoreRule.clean()` checks each
    line (leads.assignment.scoring.rule_errors) and its errors land on the field they concern."""

    model = ScoreRule
    form = ScoreRuleForm
    fields = ["position", "label", "field", "operator", "value", "points"]
    ordering = ["position", "id"]

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None or obj.is_draft else 0

    def _editable(self, request, obj) -> bool:
        return _may_administer(request) and (obj is None or obj.is_draft)

    def has_view_permission(self, request, obj=None):
        return _may_administer(request)

    def has_add_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj)


class AssignmentPolicyForm(forms.ModelForm):
    replay_days = forms.IntegerField(
        label=_("days to replay"),
        initial=30,
        min_value=1,
        max_value=365,
        required=False,
        help_text=_("“Simulate” re-decides the leads of this many past days."),
        widget=forms.NumberInput(attrs={"class": "crm-replay-days"}),
    )

    class Meta:
        model = AssignmentPolicy
        fields = ["note", *AssignmentPolicy.PARAMETERS]


PARAMETER_FIELDSETS = [
    (_("Lead score"), {"fields": ["base_score"]}),
    (
        _("Fit weights"),
        {
            "fields": [
                "weight_industry",
                "weight_region",
                "weight_product",
                "weight_response",
                "weight_cycle",
                "long_cycle_budget",
            ]
        },
    ),
    (
        _("Who may get a lead"),
        {
            "fields": [
                "default_capacity",
                "require_region",
                "require_industry",
                "relax_after_minutes",
            ]
        },
    ),
    (
        _("Fairness and hot zone"),
        {"fields": ["best_band", "fairness_window_days", "hot_zone_days", "hot_zone_min_score"]},
    ),
    (
        _("Observation zone"),
        {"fields": ["late_after_hours", "observation_late_streak", "observation_recovery"]},
    ),
]


@admin.register(AssignmentPolicy)
class AssignmentPolicyAdmin(TenantModelAdmin):
    """The one draft and the published versions (F8–F10, F14). The draft is edited, then
    simulated over past leads ("Simulate") and published as the next version
    ("Publish"); versions are read-only."""

    admin_roles = ASSIGNMENT_ROLES

    form = AssignmentPolicyForm
    inlines = [ScoreRuleInline]
    change_list_template = "admin/leads/assignmentpolicy/change_list.html"
    change_form_template = "admin/leads/assignmentpolicy/change_form.html"
    replay_template = "admin/leads/assignmentpolicy/replay.html"
    replay_result_template = "admin/leads/assignmentpolicy/replay_result.html"
    list_display = ["name", "status", "version", "note", "published_at", "created_by"]
    list_display_links = ["name"]
    list_filter = ["status"]
    list_select_related = ["created_by", "tenant"]

    @admin.display(description=_("policy"), ordering="version")
    def name(self, obj):
        return str(obj)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            head = (None, {"fields": ["version", "note", "published_at", "created_by"]})
        else:
            head = (None, {"fields": ["note"]})
        return [head, *PARAMETER_FIELDSETS]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            return ["version", "published_at", "created_by"]
        return []

    def has_add_permission(self, request):
        return False  # the draft is made from the active version ("Edit the draft")

    def has_delete_permission(self, request, obj=None):
        return False  # versions are history; decisions point at them

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.is_draft)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("draft/", wrap(self.draft_view), name="leads_assignmentpolicy_draft"),
            path(
                "<path:object_id>/replay/<uuid:replay_id>/",
                wrap(self.replay_view),
                name="leads_assignmentpolicy_replay",
            ),
            *super().get_urls(),
        ]

    # --- the draft ---------------------------------------------------------------------

    def draft_view(self, request):
        """Open the tenant's draft, made from the active version when there is none."""
        from leads.assignment.policy import policy_draft

        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.tenant is None:
            self.message_user(request, _("Choose a tenant first."), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:leads_assignmentpolicy_changelist"))
        with tenant_context(request.tenant):
            draft = policy_draft(request.user)
        return HttpResponseRedirect(reverse("admin:leads_assignmentpolicy_change", args=[draft.pk]))

    def save_model(self, request, obj, form, change):
        request._replay_days = form.cleaned_data.get("replay_days") or 30
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        policy = form.instance
        before = _rule_lines(policy)
        instances = formset.save(commit=False)
        for rule in formset.deleted_objects:
            rule.delete()
        for rule in instances:
            rule.tenant = policy.tenant
            rule.policy = policy
            rule.save()
        formset.save_m2m()
        after = _rule_lines(policy)
        if before != after:
            audit(
                tenant=policy.tenant,
                actor=request.user,
                action="admin.change",
                obj=policy,
                changes={"rules": [before, after]},
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        policy = self.get_object(request, unquote(object_id))
        extra = {"replays": []}
        if policy is not None and policy.is_draft:
            extra["replays"] = list(
                ReplayRun.objects.filter(policy=policy)
                .select_related("baseline", "requested_by")
                .order_by("-created_at")[:5]
            )
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def response_change(self, request, obj):
        if "_simulate" in request.POST and obj.is_draft:
            from leads.assignment.replay_runs import replay_create

            with _in_tenant(obj):
                run = replay_create(
                    obj, days=getattr(request, "_replay_days", 30), user=request.user
                )
            self.message_user(
                request,
                _("The draft is saved; the replay of the last %(days)s days has started.")
                % {"days": run.days},
            )
            return HttpResponseRedirect(_replay_url(obj, run))
        if "_publish" in request.POST and obj.is_draft:
            published = self._publish(request, obj)
            target = published or obj
            return HttpResponseRedirect(
                reverse("admin:leads_assignmentpolicy_change", args=[target.pk])
            )
        return super().response_change(request, obj)

    def _publish(self, request, draft, note: str = "") -> AssignmentPolicy | None:
        """The draft as the next version; None (and a message) when it is the same as the
        active version, which would make a version that changes nothing."""
        from leads.assignment.policy import policy_publish

        with _in_tenant(draft):
            if _same_as_active(draft):
                self.message_user(
                    request,
                    _("The draft is the same as the active version: nothing to publish."),
                    messages.WARNING,
                )
                return None
            published = policy_publish(draft, user=request.user, note=note or draft.note)
        self.message_user(
            request,
            _("Published as version %(version)s: new leads are decided under it from now on.")
            % {"version": published.version},
            messages.SUCCESS,
        )
        return published

    # --- the replay page ---------------------------------------------------------------

    def replay_view(self, request, object_id, replay_id):
        from leads.assignment.replay_runs import snapshot_matches

        policy = self.get_object(request, unquote(object_id))
        if policy is None:
            raise Http404(_("No such object in this tenant."))
        run = (
            ReplayRun.objects.select_related("baseline", "requested_by")
            .filter(policy=policy, public_id=replay_id)
            .first()
        )
        if run is None:
            raise Http404(_("No such replay."))
        current = policy.is_draft and snapshot_matches(policy, run.parameters)
        if request.method == "POST":
            if not self.has_change_permission(request, policy):
                raise PermissionDenied
            if run.status != ReplayStatus.DONE or not current:
                self.message_user(
                    request,
                    _("The draft changed after this replay: simulate it again before applying."),
                    messages.ERROR,
                )
                return HttpResponseRedirect(_replay_url(policy, run))
            note = request.POST.get("note", "").strip()[:200]
            if self._publish(request, policy, note=note) is None:
                return HttpResponseRedirect(_replay_url(policy, run))
            return HttpResponseRedirect(reverse("admin:leads_assignmentpolicy_changelist"))

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Replay of the draft"),
            "subtitle": None,
            "original": policy,
            "run": run,
            "pending": run.status in (ReplayStatus.QUEUED, ReplayStatus.RUNNING),
            "current": current,
            "already_active": current and _same_as_active(policy),
            "has_change_permission": self.has_change_permission(request, policy),
            **_replay_figures(run, request.GET.get("page")),
        }
        template = (
            self.replay_result_template if getattr(request, "htmx", False) else self.replay_template
        )
        return TemplateResponse(request, template, context)


def _same_as_active(draft: AssignmentPolicy) -> bool:
    from leads.assignment.policy import policy_active
    from leads.assignment.replay_runs import policy_snapshot, snapshot_matches

    with _in_tenant(draft):
        return snapshot_matches(policy_active(), policy_snapshot(draft))


def _rule_lines(policy: AssignmentPolicy) -> list[str]:
    return [f"{r} {r.points:+d}" for r in policy.rules.order_by("position", "id")]


def _replay_url(policy, run) -> str:
    return reverse("admin:leads_assignmentpolicy_replay", args=[policy.pk, run.public_id])


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _replay_figures(run: ReplayRun, page: str | None) -> dict:
    """The stored result, shaped for the page: per-rep rows with differences and A-class
    shares, and one page of the leads that move."""
    result = run.result or {}
    if run.status != ReplayStatus.DONE or not result:
        return {"result": None}
    reps = result.get("reps", [])
    a_now = sum(r["a_now"] for r in reps)
    a_draft = sum(r["a_draft"] for r in reps)
    rows = [
        {
            **r,
            "diff": r["draft"] - r["now"],
            "a_share_now": _percent(r["a_now"], a_now),
            "a_share_draft": _percent(r["a_draft"], a_draft),
        }
        for r in reps
    ]
    moved = []
    for m in result.get("moved", []):
        moved.append({**m, "url": reverse("leads:detail", args=[m["lead"]])})
    page_obj = Paginator(moved, 50).get_page(page)
    return {
        "result": result,
        "rows": rows,
        "a_total_now": a_now,
        "a_total_draft": a_draft,
        "moved_page": page_obj,
        "moved_shown": len(moved),
        "gini_change": round(result.get("gini_draft", 0) - result.get("gini_now", 0), 4),
    }


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantModelAdmin):
    """The tenant's SLA thresholds (F11): one row per tenant."""

    admin_roles = ASSIGNMENT_ROLES

    list_display = [
        "name",
        "a_unassigned_minutes",
        "unassigned_minutes",
        "unverified_hours",
        "unverified_escalation_hours",
        "no_followup_hours",
        "second_touch_hours",
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

    admin_roles = ASSIGNMENT_ROLES

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


# --- Verification (F16) ---------------------------------------------------------------------


@admin.register(InvalidReason)
class InvalidReasonAdmin(TenantModelAdmin):
    """The tenant's reasons for an invalid verdict (about 12; the defaults are created on
    first use by leads.verification.invalid_reasons). Switch one off rather than delete
    it: verified leads keep theirs."""

    list_display = ["name", "position", "is_active"]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


# The rooms register their own admin pages; Django's autodiscovery imports this module only.
from leads.board import admin as board_admin  # noqa: E402, F401
