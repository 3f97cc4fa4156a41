"""The assignment policy in the admin (F8–F10, F14): the draft with its score rules,
edited, simulated over past leads (the replay page) and published as the next version.
Imported by leads/admin.py (admin autodiscovery)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from crm.admin_base import TenantModelAdmin, acting_member
from crm.roles import ASSIGNERS
from crm.tenancy import tenant_context
from leads.assignment.admin import in_tenant, may_administer
from leads.assignment.policy import score_rules_save
from leads.models import (
    AssignmentPolicy,
    ReplayRun,
    ReplayStatus,
    ScoreField,
    ScoreRule,
)


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
        return may_administer(request) and (obj is None or obj.is_draft)

    def has_view_permission(self, request, obj=None):
        return may_administer(request)

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

    admin_roles = ASSIGNERS

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
            draft = policy_draft(
                tenant=request.tenant, acting_member=acting_member(request, request.tenant)
            )
        return HttpResponseRedirect(reverse("admin:leads_assignmentpolicy_change", args=[draft.pk]))

    def save_model(self, request, obj, form, change):
        request._replay_days = form.cleaned_data.get("replay_days") or 30
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        policy = form.instance
        rules = formset.save(commit=False)
        score_rules_save(
            tenant=policy.tenant,
            acting_member=acting_member(request, policy.tenant),
            policy=policy,
            rules=rules,
            deleted=formset.deleted_objects,
        )
        formset.save_m2m()

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

            with in_tenant(obj):
                run = replay_create(
                    tenant=obj.tenant,
                    acting_member=acting_member(request, obj.tenant),
                    draft=obj,
                    days=getattr(request, "_replay_days", 30),
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

        with in_tenant(draft):
            if _same_as_active(draft):
                self.message_user(
                    request,
                    _("The draft is the same as the active version: nothing to publish."),
                    messages.WARNING,
                )
                return None
            published = policy_publish(
                tenant=draft.tenant,
                acting_member=acting_member(request, draft.tenant),
                draft=draft,
                note=note or draft.note,
            )
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

    with in_tenant(draft):
        return snapshot_matches(policy_active(), policy_snapshot(draft))


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
