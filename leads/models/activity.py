"""The lead activity index (F41, docs/activity.md): each open lead's score of a day, its
rep's average that day, and the nightly run that wrote them (leads.activity.compute)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.models import Membership, TenantOwned
from leads.models.lead import Lead


def _points(verbose_name) -> models.DecimalField:
    return models.DecimalField(verbose_name, max_digits=4, decimal_places=1)


class LeadActivity(TenantOwned):
    """An open lead's activity index on a day (the tenant's local day; every value as of
    its start). The three components are points (freshness 0 or 40, density 0–35,
    coverage 0–25) and `score` their sum; `idle_days`, `follow_ups` and `roles` are what
    they were computed from."""

    # No database foreign keys on the lead and the owner: the night's statement takes both
    # from the lead rows themselves, and a key would check (and lock) every one of a
    # million leads again at commit. Deleting a lead or a member through Django still
    # deletes their rows (on_delete), and rows older than KEEP_DAYS are pruned.
    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="activity",
        verbose_name=_("lead"),
    )
    day = models.DateField(_("day"))
    owner = models.ForeignKey(
        Membership,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
        verbose_name=_("owner"),
    )
    idle_days = models.PositiveIntegerField(_("days since the last update"))
    follow_ups = models.PositiveSmallIntegerField(_("follow-ups in 30 days"))
    roles = models.PositiveSmallIntegerField(_("decision-chain roles reached"))
    freshness = _points(_("freshness"))
    density = _points(_("action density"))
    coverage = _points(_("role coverage"))
    score = _points(_("activity index"))

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead activity")
        verbose_name_plural = _("lead activity")
        constraints = [
            *TenantOwned.Meta.constraints,
            # Day first: a night's rows go to the end of the index, not into every lead's
            # part of it; a lead's row is read with the day known (the latest run's).
            models.UniqueConstraint(fields=["tenant", "day", "lead"], name="leadactivity_day_lead"),
        ]
        indexes = [
            # A day's rows by rep, lowest score first: the board's rescue list, the metrics.
            models.Index(fields=["tenant", "day", "owner", "score"], name="leadactivity_day"),
        ]


class RepActivity(TenantOwned):
    """A rep's day: how many open leads they owned, how many scored below the rescue line,
    and the average of their scores."""

    owner = TenantForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("rep")
    )
    day = models.DateField(_("day"))
    leads = models.PositiveIntegerField(_("open leads"))
    below = models.PositiveIntegerField(_("leads below the rescue line"))
    average = _points(_("average activity index"))

    class Meta(TenantOwned.Meta):
        verbose_name = _("rep activity")
        verbose_name_plural = _("rep activity")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "day", "owner"], name="repactivity_day_owner"
            ),
        ]


class ActivityRun(TenantOwned):
    """One nightly computation of a tenant's day: the day is done once it has a run."""

    day = models.DateField(_("day"))
    leads = models.PositiveIntegerField(_("open leads scored"))
    below = models.PositiveIntegerField(_("leads below the rescue line"))
    seconds = models.FloatField(_("seconds"))
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("activity index run")
        verbose_name_plural = _("activity index runs")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "day"], name="activityrun_day"),
        ]
