"""The lead-quality report's daily roll-ups (F36; leads/reports/rollups.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import TenantOwned


class ReportChange(TenantOwned):
    """A mark that leads created in one UTC hour changed in a way the lead-quality report
    counts. Written by PostgreSQL triggers on leads and follow-ups (migration 0006), so no
    code path can forget it; drained by `leads.reports.rollups.refresh`. While a mark is pending,
    the local days its hour overlaps are counted live, never from their roll-ups."""

    hour = models.DateTimeField(_("hour"))

    class Meta(TenantOwned.Meta):
        verbose_name = _("report change")
        verbose_name_plural = _("report changes")
        indexes = [models.Index(fields=["tenant", "hour"], name="reportchange_hour")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.hour:%Y-%m-%d %H:00}"


class ReportDay(TenantOwned):
    """A local day whose roll-ups are computed, and in which time zone. A day is read from
    its roll-ups only when the zone is still the tenant's and no change mark is pending."""

    day = models.DateField(_("day"))
    time_zone = models.CharField(_("time zone"), max_length=64)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("report day")
        verbose_name_plural = _("report days")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "day"], name="reportday_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} ({self.time_zone})"


class QualityDay(TenantOwned):
    """The leads created on one local day, counted per channel, source grade and invalid
    reason (null for leads without one): the report's channel, grade and reason tables
    are sums of these rows. Ids, not foreign keys: derived data that a later refresh
    rewrites."""

    day = models.DateField(_("day"))
    channel_id = models.BigIntegerField(_("channel"))
    source_grade = models.CharField(_("source grade"), max_length=1)
    invalid_reason_id = models.BigIntegerField(_("invalid reason"), null=True)
    delivered = models.IntegerField(default=0)
    verified_24h = models.IntegerField(default=0)
    valid_24h = models.IntegerField(default=0)
    invalid = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0)
    suspect = models.IntegerField(default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead-quality day")
        verbose_name_plural = _("lead-quality days")
        indexes = [models.Index(fields=["tenant", "day"], name="qualityday_day")]


class QualityRepDay(TenantOwned):
    """The leads created on one local day, per owner: valid ones, those followed up within
    72 h, those assigned and touched, and the exact times to first touch of the
    latter (float64 seconds, sorted, packed) so medians over any range stay exact."""

    day = models.DateField(_("day"))
    owner_id = models.BigIntegerField(_("owner"))
    valid = models.IntegerField(default=0)
    followed_up = models.IntegerField(default=0)
    touched = models.IntegerField(default=0)
    first_touch_seconds = models.BinaryField(_("times to first touch"), default=b"")

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead-quality rep day")
        verbose_name_plural = _("lead-quality rep days")
        indexes = [models.Index(fields=["tenant", "day"], name="qualityrepday_day")]
