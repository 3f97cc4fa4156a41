"""SLA clocks (F11, F13): the tenant's thresholds and the alerts fired."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.models import Membership, TenantOwned
from leads.models.choices import SalesModel, SlaThreshold
from leads.models.lead import Lead


class SlaPolicy(TenantOwned):
    """The tenant's SLA thresholds; one row per tenant, created with the defaults."""

    a_unassigned_minutes = models.PositiveIntegerField(
        _("A-class lead unassigned (minutes)"), default=30, validators=[MinValueValidator(1)]
    )
    unassigned_minutes = models.PositiveIntegerField(
        _("any lead unassigned (minutes)"), default=120, validators=[MinValueValidator(1)]
    )
    unverified_hours = models.PositiveIntegerField(
        _("assigned, not verified: remind the rep after (hours)"),
        default=24,
        validators=[MinValueValidator(1)],
    )
    unverified_escalation_hours = models.PositiveIntegerField(
        _("… then tell the manager after another (hours)"),
        default=8,
        validators=[MinValueValidator(1)],
    )
    no_followup_hours = models.PositiveIntegerField(
        _("valid lead without follow-up (hours)"), default=72, validators=[MinValueValidator(1)]
    )
    second_touch_hours = models.PositiveIntegerField(
        _("no second touch after the first: back to the pool (hours)"),
        default=72,
        validators=[MinValueValidator(1)],
    )
    is_active = models.BooleanField(_("active"), default=True)
    sales_model = models.CharField(
        _("sales model"),
        max_length=3,
        choices=SalesModel.choices,
        default=SalesModel.B2B,
        help_text=_(
            "The response-time water level's target: the median time from a lead's "
            "assignment to its first touch, per day."
        ),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant"], name="slapolicy_one_per_tenant"),
        ]

    def __str__(self) -> str:
        return str(_("SLA policy"))


class SlaAlert(TenantOwned):
    """One fired threshold for one lead and dispatch round. The unique constraint is what
    makes the sweep fire once, however many beat processes run it."""

    lead = TenantForeignKey(
        Lead, on_delete=models.CASCADE, related_name="sla_alerts", verbose_name=_("lead")
    )
    threshold = models.CharField(_("threshold"), max_length=20, choices=SlaThreshold.choices)
    round = models.PositiveSmallIntegerField(_("dispatch round"), default=0)
    owner = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    fired_at = models.DateTimeField(_("fired at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("SLA alert")
        verbose_name_plural = _("SLA alerts")
        ordering = ["-fired_at"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "lead", "threshold", "round"], name="slaalert_once"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-fired_at"], name="slaalert_newest")]

    def __str__(self) -> str:
        return f"{self.lead} · {self.get_threshold_display()}"
