"""Customer health in the tenant admin (F31–F34): the tenant's settings (one row, the
changelist opens it) with the back-test of a draft before saving and "recompute now",
and the retention playbook. docs/health.md is the map."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.admin_base import TenantModelAdmin, acting_member
from crm.tenancy import tenant_context
from health import admin_signals  # noqa: F401  signals and tracked links, read-only
from health.forms import HealthSettingsForm, band_field_name
from health.models import Dimension, HealthSettings, PlaybookStep


@admin.register(HealthSettings)
class HealthSettingsAdmin(TenantModelAdmin):
    """The weights, bands, risk rule and competitor keywords. "Preview" back-tests the
    draft over past snapshots (health.backtest) without saving; "Save" saves it."""

    form = HealthSettingsForm
    change_form_template = "admin/health/healthsettings/change_form.html"
    list_display = ["__str__", "weights_text", "risk_score_below", "risk_quiet_days", "updated_at"]
    readonly_fields = ["track_key", "track_secret", "computed_on", "computed_at", "updated_at"]
    fieldsets = [
        (
            _("Weights"),
            {
                "fields": [f"weight_{d}" for d in Dimension.values],
                "description": _(
                    "How much each dimension counts in the health score; the six sum to "
                    "100. A weight of 0 leaves the dimension out."
                ),
            },
        ),
        (
            _("Bands"),
            {
                "fields": [band_field_name(d) for d in Dimension.values],
                "description": _(
                    "How each dimension's value becomes a score from 0 to 100. Use "
                    "“Preview” to see how a change would have ranked past customers."
                ),
            },
        ),
        (_("Risk list"), {"fields": ["risk_score_below", "risk_quiet_days"]}),
        (_("Competitor searches"), {"fields": ["competitor_keywords"]}),
        (
            _("Tracking and recompute"),
            {"fields": ["track_key", "track_secret", "computed_on", "computed_at", "updated_at"]},
        ),
    ]

    @admin.display(description=_("weights"))
    def weights_text(self, obj):
        return " / ".join(str(w) for w in obj.weights().values())

    def has_add_permission(self, request):
        return False  # one row per tenant, made with the defaults when first needed

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """A tenant admin goes straight to the tenant's one row."""
        if request.user.is_superuser or getattr(request, "tenant", None) is None:
            return super().changelist_view(request, extra_context)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings = HealthSettings.for_tenant(request.tenant)
        return HttpResponseRedirect(self._change_url(settings))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/recompute/",
                wrap(self.recompute_view),
                name="health_healthsettings_recompute",
            ),
            path(
                "<path:object_id>/rotate-secret/",
                wrap(self.rotate_view),
                name="health_healthsettings_rotate",
            ),
            *super().get_urls(),
        ]

    # -- saving and the preview ---------------------------------------------------------

    def save_model(self, request, obj, form, change):
        from health.settings_services import health_settings_update

        tenant = obj.tenant if request.user.is_superuser else request.tenant
        with tenant_context(tenant):
            health_settings_update(
                tenant=tenant, acting_member=acting_member(request, tenant), settings=obj
            )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_preview" in request.POST and object_id:
            return self._preview(request, object_id, form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _preview(self, request, object_id, form_url, extra_context):
        """The change form again with the draft in it and, when it is valid, the back-test
        of the draft against the saved settings. Nothing is saved."""
        from health import backtest

        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(_("No such object in this tenant."))
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        saved = HealthSettings._base_manager.get(pk=obj.pk)
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(request, obj, change=True, fields=flatten_fieldsets(fieldsets))
        form = form_class(request.POST, instance=obj)
        result = None
        with tenant_context(saved.tenant), _tenant_time(saved.tenant):
            if form.is_valid():
                result = backtest.run(saved.tenant, draft=form.instance, saved=saved)
            admin_form = helpers.AdminForm(
                form, list(fieldsets), {}, self.get_readonly_fields(request, obj), model_admin=self
            )
            context = {
                **self.admin_site.each_context(request),
                "title": _("Change %s") % self.opts.verbose_name,
                "subtitle": str(obj),
                "adminform": admin_form,
                "object_id": object_id,
                "original": saved,
                "is_popup": False,
                "to_field": None,
                "media": self.media + admin_form.media,
                "inline_admin_formsets": [],
                "errors": helpers.AdminErrorList(form, []),
                "preserved_filters": self.get_preserved_filters(request),
                "backtest": result,
                "previewed": True,
                **(extra_context or {}),
            }
            response = self.render_change_form(
                request, context, change=True, obj=saved, form_url=form_url
            )
            response.render()
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        from health import backtest

        context.setdefault(
            "backtest_terms",
            {
                "aftermath": backtest.AFTERMATH_DAYS,
                "lookback_weeks": backtest.LOOKBACK_DAYS // 7,
                "step": backtest.STEP_DAYS,
                "decile": 100 // backtest.DECILE,
            },
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- recompute now, rotate the secret -----------------------------------------------

    def _posted_object(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(_("No such object in this tenant."))
        if request.method != "POST":
            return obj, HttpResponseRedirect(self._change_url(obj))
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj, None

    def _change_url(self, obj) -> str:
        return reverse("admin:health_healthsettings_change", args=[obj.pk])

    def recompute_view(self, request, object_id):
        from health.settings_services import health_recompute

        obj, redirect = self._posted_object(request, object_id)
        if redirect is not None:
            return redirect
        with tenant_context(obj.tenant):
            result = health_recompute(
                tenant=obj.tenant, acting_member=acting_member(request, obj.tenant)
            )
        if result.get("queued"):
            message = _(
                "The tenant has %(n)d customers: the recompute is queued and runs in the "
                "background (from 02:00 on, in the tenant's time zone)."
            ) % {"n": result["customers"]}
        else:
            message = ngettext(
                "Recomputed: %(n)d customer scored for %(day)s (%(with)d with a score).",
                "Recomputed: %(n)d customers scored for %(day)s (%(with)d with a score).",
                result["scored"],
            ) % {"n": result["scored"], "day": result["day"], "with": result["with_score"]}
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(obj))

    def rotate_view(self, request, object_id):
        from health.settings_services import health_secret_rotate

        obj, redirect = self._posted_object(request, object_id)
        if redirect is not None:
            return redirect
        with tenant_context(obj.tenant):
            health_secret_rotate(
                tenant=obj.tenant, acting_member=acting_member(request, obj.tenant), settings=obj
            )
        self.message_user(
            request,
            _("A new tracking secret is set: the sender must sign with it from now on."),
            messages.WARNING,
        )
        return HttpResponseRedirect(self._change_url(obj))


def _tenant_time(tenant):
    """The tenant's time zone for the page (the platform superuser's requests run in UTC)."""
    from django.utils import timezone

    return timezone.override(tenant.tzinfo)


# -- the playbook ---------------------------------------------------------------------------


class PlaybookFormSet(forms.BaseModelFormSet):
    """The playbook's list, edited in place: at most one active step per weakest dimension
    (the rows on the page as submitted, with the tenant's other rows), else an error on
    each clashing row rather than the database's refusal."""

    tenant = None

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        on_page = {f.instance.pk for f in self.forms if f.instance.pk}
        tenants = {f.instance.tenant_id for f in self.forms if f.instance.tenant_id}
        if self.tenant is not None:
            tenants = {self.tenant.pk}
        active: dict[tuple, list] = {}
        others = PlaybookStep._base_manager.filter(is_active=True, tenant_id__in=tenants)
        for key in others.exclude(pk__in=on_page).values_list("tenant_id", "dimension"):
            active.setdefault(key, []).append(None)
        for form in self.forms:
            data = form.cleaned_data
            if data and data.get("is_active"):
                tenant_id = form.instance.tenant_id or (self.tenant.pk if self.tenant else None)
                active.setdefault((tenant_id, data.get("dimension", "")), []).append(form)
        for (_tenant_id, dimension), rows in active.items():
            if len(rows) < 2:
                continue
            label = Dimension(dimension).label if dimension else _("default step")
            message = _(
                "Only one active step per weakest dimension: “%(dimension)s” would have %(n)d."
            ) % {"dimension": label, "n": len(rows)}
            for form in rows:
                if form is not None:
                    form.add_error("is_active", message)
        if any(self.errors):
            return
        # Saved in list order: the steps switched off first, so that a swap of the
        # active step never has two active for a moment.
        self.forms.sort(key=lambda f: bool(f.cleaned_data.get("is_active")))


@admin.register(PlaybookStep)
class PlaybookStepAdmin(TenantModelAdmin):
    """What the owner is asked to do when a customer enters the risk list, by the
    customer's weakest dimension (empty: the default step)."""

    list_display = ["dimension", "action", "is_active"]
    list_display_links = None
    list_editable = ["dimension", "action", "is_active"]
    list_filter = ["is_active", "dimension"]
    ordering = ["dimension", "-is_active", "pk"]

    def get_changelist_formset(self, request, **kwargs):
        formset = super().get_changelist_formset(request, formset=PlaybookFormSet, **kwargs)
        tenant = None if request.user.is_superuser else request.tenant
        return type(formset.__name__, (formset,), {"tenant": tenant})
