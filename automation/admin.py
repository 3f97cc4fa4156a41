"""Automation rules in the tenant admin (F47): the rule form with its validation, the dry
run of a draft over the last 30 days before it is switched on, "why did it not fire" for
one subject, resuming a paused rule, and the run log (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from automation import dryrun, explain, webhooks
from automation.forms import RuleForm
from automation.models import Miss, Rule, Run, WebhookCall
from automation.presets import presets_add
from crm.admin_base import ReadOnlyTenantModelAdmin, TenantModelAdmin, acting_member
from crm.events import get_kind
from crm.tenancy import tenant_context


@admin.register(Rule)
class RuleAdmin(TenantModelAdmin):
    form = RuleForm
    change_form_template = "admin/automation/rule/change_form.html"
    list_display = ["name", "trigger_label", "action", "is_active", "paused_at", "last_error"]
    list_filter = ["is_active", "action"]
    readonly_fields = ["paused_at", "consecutive_failures", "last_error"]
    actions = ["resume"]
    fieldsets = [
        (None, {"fields": ["name", "trigger", "is_active"]}),
        (
            _("Condition"),
            {
                "fields": [
                    "condition",
                    "count_at_least",
                    "count_days",
                    "count_same",
                    "wait_hours",
                    "unless_kind",
                ],
                "description": _(
                    "The condition reads the event's fields; the count asks for that many "
                    "events of the kind about the same subject within the days; with hours, "
                    "the rule acts that long after the event unless the awaited one came."
                ),
            },
        ),
        (
            _("Action"),
            {
                "fields": [
                    "action",
                    "to_owner",
                    "to_role",
                    "to_member",
                    "message",
                    "level",
                    "webhook_url",
                    "webhook_secret",
                ]
            },
        ),
        (
            _("Safety"),
            {"fields": ["cooldown_minutes", "paused_at", "consecutive_failures", "last_error"]},
        ),
    ]

    change_list_template = "admin/automation/rule/change_list.html"

    def get_urls(self):
        extra = [
            path(
                "presets/",
                self.admin_site.admin_view(self.presets_view),
                name="automation_rule_presets",
            )
        ]
        return extra + super().get_urls()

    def presets_view(self, request):
        """POST: add the presets the tenant does not have yet, switched off."""
        if request.method != "POST" or request.user.is_superuser:
            return HttpResponseRedirect(reverse("admin:automation_rule_changelist"))
        if not self.has_add_permission(request):
            raise PermissionDenied
        added = presets_add(
            tenant=request.tenant, acting_member=acting_member(request, request.tenant)
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d preset added, switched off: review, dry-run, then switch it on.",
                "%(count)d presets added, switched off: review, dry-run, then switch them on.",
                len(added),
            )
            % {"count": len(added)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:automation_rule_changelist"))

    @admin.display(description=_("when"))
    def trigger_label(self, obj):
        kind = get_kind(obj.trigger)
        return kind.label if kind else obj.trigger

    @admin.action(description=_("Resume the selected paused rules"))
    def resume(self, request, queryset):
        paused = list(queryset.filter(paused_at__isnull=False).values_list("pk", flat=True))
        done = Rule.objects.filter(pk__in=paused).update(
            paused_at=None, consecutive_failures=0, last_error=""
        )
        webhooks.release_held(paused)  # their calls held while paused: sent now
        self.message_user(
            request,
            ngettext("%(count)d rule resumed.", "%(count)d rules resumed.", done) % {"count": done},
            messages.SUCCESS,
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_dryrun" in request.POST:
            return self._dry_run(request, object_id, form_url, extra_context)
        extra_context = dict(extra_context or {})
        if object_id and request.GET.get("subject"):
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404(_("No such object in this tenant."))
            with tenant_context(obj.tenant):
                extra_context["why"] = explain.why_not(obj, request.GET["subject"])
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _dry_run(self, request, object_id, form_url, extra_context):
        """The form again with the draft in it and, when valid, what it would have done
        over the last 30 days. Nothing is saved."""
        obj = None
        if object_id:
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404(_("No such object in this tenant."))
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        tenant = obj.tenant if obj is not None else request.tenant
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(
            request, obj, change=obj is not None, fields=flatten_fieldsets(fieldsets)
        )
        form = form_class(request.POST, instance=obj)
        result = None
        with tenant_context(tenant):
            if form.is_valid():
                draft = form.save(commit=False)
                draft.tenant = tenant
                result = dryrun.replay(draft)
            admin_form = helpers.AdminForm(
                form, list(fieldsets), {}, self.get_readonly_fields(request, obj), model_admin=self
            )
            context = {
                **self.admin_site.each_context(request),
                "title": (_("Change %s") if obj else _("Add %s")) % self.opts.verbose_name,
                "adminform": admin_form,
                "object_id": object_id,
                "original": obj,
                "is_popup": False,
                "to_field": None,
                "media": self.media + admin_form.media,
                "inline_admin_formsets": [],
                "errors": helpers.AdminErrorList(form, []),
                "preserved_filters": self.get_preserved_filters(request),
                "dry_run": result,
                **(extra_context or {}),
            }
            response = self.render_change_form(
                request,
                context,
                add=obj is None,
                change=obj is not None,
                obj=obj,
                form_url=form_url,
            )
            response.render()
        return response


@admin.register(Run)
class RunAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["at", "rule", "kind", "subject", "matched", "count", "outcome", "detail"]
    list_filter = ["outcome", "rule"]
    search_fields = ["subject"]
    list_select_related = ["rule"]
    fields = ["at", "rule", "kind", "subject", "values", "count", "matched", "outcome", "detail"]


@admin.register(Miss)
class MissAdmin(ReadOnlyTenantModelAdmin):
    """The conditions found false, a row per drained event (the rule's page and "why did
    it not fire" show them among the rule's runs)."""

    list_display = ["at", "kind", "key", "object", "rule_count"]
    list_filter = ["kind"]
    search_fields = ["key", "object"]
    fields = ["at", "event", "kind", "key", "object", "rule_names"]
    readonly_fields = ["rule_names"]

    @admin.display(description=_("rules"))
    def rule_count(self, obj):
        return len(obj.rules)

    @admin.display(description=_("rules whose condition was false"))
    def rule_names(self, obj):
        names = dict(Rule.objects.filter(pk__in=obj.rules).values_list("pk", "name"))
        parts = []
        for rule_id, count in zip(obj.rules, obj.counts, strict=False):
            name = names.get(rule_id, f"#{rule_id}")
            parts.append(name if count is None else f"{name} ({_('count')} {count})")
        return "; ".join(parts)


@admin.register(WebhookCall)
class WebhookCallAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["created_at", "rule", "subject", "status", "attempts", "http_status"]
    list_filter = ["status", "rule"]
    search_fields = ["subject"]
    list_select_related = ["rule"]
    fields = [
        "created_at",
        "rule",
        "subject",
        "url",
        "status",
        "attempts",
        "next_attempt_at",
        "http_status",
        "last_error",
        "sent_at",
        "body",
    ]
