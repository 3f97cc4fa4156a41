"""The daily board (F15, F19): how it ranks a rep's work, and the reps' closed days."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.models import Membership, TenantOwned


class BoardSettings(TenantOwned):
    """How the board ranks a rep's work (F15): rank = level weight (the customer's, or a
    lead's source grade) × lead score factor × urgency weight × (1 + hours overdue ×
    overdue weight). One row per tenant."""

    level_a = models.FloatField(_("weight: A-level customer or A-grade lead"), default=3.0)
    level_b = models.FloatField(_("weight: B-level customer or B-grade lead"), default=2.0)
    level_c = models.FloatField(_("weight: C-level customer or C-grade lead"), default=1.0)
    urgency_verify = models.FloatField(_("urgency: lead to verify"), default=3.0)
    urgency_overdue = models.FloatField(_("urgency: follow-up overdue"), default=2.5)
    urgency_due = models.FloatField(_("urgency: follow-up due today"), default=1.5)
    urgency_revisit = models.FloatField(_("urgency: revisit"), default=2.0)
    overdue_per_hour = models.FloatField(
        _("weight per hour overdue"), default=0.05, validators=[MinValueValidator(0)]
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("board settings")
        verbose_name_plural = _("board settings")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant"], name="boardsettings_one_per_tenant"),
        ]

    def __str__(self) -> str:
        return str(_("board settings"))


class DailySummary(TenantOwned):
    """A rep's closed day (F19): what was done and what is left, as it stood then."""

    membership = TenantForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("rep")
    )
    day = models.DateField(_("day"))
    contacts = models.PositiveIntegerField(_("contacts made"), default=0)
    loops_closed = models.PositiveIntegerField(_("loops closed"), default=0)
    overdue_left = models.PositiveIntegerField(_("overdue items left"), default=0)
    tomorrow = models.JSONField(_("tomorrow's actions"), default=list, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    closed_at = models.DateTimeField(_("closed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("daily summary")
        verbose_name_plural = _("daily summaries")
        ordering = ["-day", "membership_id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership", "day"], name="dailysummary_one_per_day"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="dailysummary_day")]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.day}"


class RepActiveDay(TenantOwned):
    """A local day (the tenant's time zone) on which a member acted: logged a follow-up or
    a verification (customers.Interaction), made an entry on a lead's timeline
    (LeadEvent), closed the day on the board (DailySummary) or made an audited change
    (crm.AuditEvent). The self-test's daily active reps (leads.selftest) count these rows
    instead of the four sources. Kept by PostgreSQL triggers on the four tables and on new
    seats (migration 0021), so every path (ORM, imports, COPY, cascades) keeps it exact;
    rebuilt for a tenant whose time zone changes (`leads.rep_days.rebuild`). An id, not
    a foreign key: derived data the triggers write and delete."""

    membership_id = models.BigIntegerField(_("member"))
    day = models.DateField(_("day"))

    class Meta(TenantOwned.Meta):
        verbose_name = _("member's active day")
        verbose_name_plural = _("members' active days")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership_id", "day"], name="repactiveday_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.day}"
