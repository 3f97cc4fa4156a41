"""Assignment (F8–F14): rep profiles, policy versions and their score rules, the
decisions, the fairness ledger and replays. Decisions and rules are explained in
docs/assignment.md."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey, TenantOneToOneField
from crm.models import Membership, TenantOwned
from leads.models.choices import (
    CyclePreference,
    DecisionKind,
    DecisionOutcome,
    PolicyStatus,
    ReplayStatus,
    ResponseTier,
    ScoreField,
    ScoreOperator,
    Zone,
)
from leads.models.lead import Lead
from leads.models.score_rules import rule_errors


class RepProfile(TenantOwned):
    """What a rep is good at and how much they can take (F9, F10); one per rep seat."""

    membership = TenantOneToOneField(
        Membership,
        on_delete=models.CASCADE,
        related_name="rep_profile",
        verbose_name=_("rep"),
    )
    industries = models.JSONField(_("industries"), default=list, blank=True)
    provinces = models.JSONField(_("provinces"), default=list, blank=True)
    cities = models.JSONField(_("cities"), default=list, blank=True)
    product_lines = models.JSONField(
        _("product lines"),
        default=list,
        blank=True,
        help_text=_("Matched against the lead's tags and enquiry, e.g. 影像设备, DR, CT."),
    )
    response_tier = models.CharField(
        _("response speed"),
        max_length=10,
        choices=ResponseTier.choices,
        default=ResponseTier.NORMAL,
    )
    cycle_preference = models.CharField(
        _("deal-cycle preference"),
        max_length=10,
        choices=CyclePreference.choices,
        default=CyclePreference.ANY,
    )
    capacity = models.IntegerField(
        _("capacity"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_(
            "Most open unverified leads at once; blank takes the policy's default (8). "
            "0 takes no new leads."
        ),
    )
    share_weight = models.FloatField(
        _("share weight"),
        default=1.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(10)],
        help_text=_("Relative target share: 2 means twice the leads of a rep at 1."),
    )
    is_available = models.BooleanField(
        _("available"), default=True, help_text=_("Untick for leave, training or holidays.")
    )
    unavailable_until = models.DateField(
        _("away until"),
        null=True,
        blank=True,
        help_text=_("Back on dispatch after this day, by itself."),
    )
    zone = models.CharField(_("zone"), max_length=12, choices=Zone.choices, blank=True, default="")
    zone_since = models.DateTimeField(_("in the zone since"), null=True, blank=True)
    late_streak = models.PositiveSmallIntegerField(_("late first touches in a row"), default=0)
    on_time_streak = models.PositiveSmallIntegerField(
        _("on-time first touches in a row"), default=0
    )
    training_acknowledged_at = models.DateTimeField(
        _("training card acknowledged"), null=True, blank=True
    )
    last_assigned_at = models.DateTimeField(_("last lead received"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta(TenantOwned.Meta):
        verbose_name = _("rep profile")
        verbose_name_plural = _("rep profiles")
        ordering = ["membership__user__username"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership"], name="repprofile_one_per_seat"
            ),
        ]

    def __str__(self) -> str:
        return self.membership.display_name

    def available_on(self, day) -> bool:
        return rep_available(self.is_available, self.unavailable_until, day)


def profile_of(membership: Membership) -> RepProfile | None:
    """The member's RepProfile, or None; read once per membership object (the reverse
    one-to-one caches it, absent included), so a page asking twice queries once."""
    try:
        return membership.rep_profile
    except RepProfile.DoesNotExist:
        return None


def rep_available(is_available: bool, away_until, day) -> bool:
    """Available on `day`: ticked, and not before the day after `away_until`."""
    return is_available and (away_until is None or day > away_until)


class AssignmentPolicy(TenantOwned):
    """The weights and thresholds that decide who gets a lead (F8–F10, F14).

    A tenant edits one draft; publishing copies it, with its score rules, into the next
    immutable version. Every decision records the version that made it.
    """

    status = models.CharField(
        _("status"), max_length=10, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    version = models.PositiveIntegerField(_("version"), null=True, blank=True, editable=False)
    note = models.CharField(_("what changed"), max_length=200, blank=True)
    base_score = models.IntegerField(
        _("base score"), default=50, help_text=_("Every lead starts here; rules add or subtract.")
    )
    default_capacity = models.PositiveSmallIntegerField(
        _("default capacity"),
        default=8,
        help_text=_("Open unverified leads a rep may hold when their profile sets no cap."),
    )
    weight_industry = models.FloatField(_("weight: industry match"), default=0.5)
    weight_region = models.FloatField(_("weight: region match"), default=0.3)
    weight_product = models.FloatField(_("weight: product line match"), default=0.3)
    weight_response = models.FloatField(
        _("weight: response speed"),
        default=0.2,
        help_text=_("Added in full for fast responders, half for normal ones."),
    )
    weight_cycle = models.FloatField(_("weight: deal-cycle preference"), default=0.2)
    require_region = models.BooleanField(
        _("require region"),
        default=False,
        help_text=_(
            "Only reps covering the lead's province; dropped first when nobody is eligible."
        ),
    )
    require_industry = models.BooleanField(
        _("require industry"),
        default=False,
        help_text=_("Only reps with the lead's industry; dropped second when nobody is eligible."),
    )
    relax_after_minutes = models.PositiveIntegerField(
        _("wait before dropping criteria (minutes)"), default=10
    )
    best_band = models.FloatField(
        _("best band"),
        default=0.15,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Reps within this fraction of the top score count as the best; 0.15 = 15%."),
    )
    fairness_window_days = models.PositiveSmallIntegerField(
        _("fairness window (days)"), default=30, validators=[MinValueValidator(1)]
    )
    hot_zone_days = models.PositiveSmallIntegerField(
        _("hot zone after (days without a lead)"), default=7, validators=[MinValueValidator(1)]
    )
    hot_zone_min_score = models.IntegerField(_("hot zone: lead score at least"), default=70)
    observation_late_streak = models.PositiveSmallIntegerField(
        _("observation zone after (late first touches in a row)"),
        default=3,
        validators=[MinValueValidator(1)],
    )
    observation_recovery = models.PositiveSmallIntegerField(
        _("back to normal after (on-time first touches)"),
        default=5,
        validators=[MinValueValidator(1)],
    )
    late_after_hours = models.PositiveSmallIntegerField(
        _("first touch late after (hours)"), default=24, validators=[MinValueValidator(1)]
    )
    long_cycle_budget = models.PositiveIntegerField(
        _("long-cycle budget from (yuan)"),
        default=500_000,
        help_text=_("Leads with a budget at least this are long-cycle deals."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)

    # The fields a version copies from its draft (everything that changes a decision).
    PARAMETERS = (
        "base_score",
        "default_capacity",
        "weight_industry",
        "weight_region",
        "weight_product",
        "weight_response",
        "weight_cycle",
        "require_region",
        "require_industry",
        "relax_after_minutes",
        "best_band",
        "fairness_window_days",
        "hot_zone_days",
        "hot_zone_min_score",
        "observation_late_streak",
        "observation_recovery",
        "late_after_hours",
        "long_cycle_budget",
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("assignment policy")
        verbose_name_plural = _("assignment policies")
        ordering = ["status", "-version"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "version"],
                condition=Q(version__isnull=False),
                name="assignmentpolicy_one_per_version",
            ),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status="draft"),
                name="assignmentpolicy_one_draft",
            ),
            models.CheckConstraint(
                condition=Q(status="draft", version__isnull=True)
                | Q(status="published", version__isnull=False),
                name="assignmentpolicy_version_iff_published",
            ),
        ]

    def __str__(self) -> str:
        if self.status == PolicyStatus.DRAFT:
            return str(_("Draft"))
        return _("Version %(version)s") % {"version": self.version}

    @property
    def is_draft(self) -> bool:
        return self.status == PolicyStatus.DRAFT


class ScoreRule(TenantOwned):
    """One line of the lead score (F8): when the condition holds, add the points."""

    policy = TenantForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="rules", verbose_name=_("policy")
    )
    label = models.CharField(_("label"), max_length=80, blank=True)
    field = models.CharField(
        _("field"),
        max_length=20,
        blank=True,
        choices=ScoreField.choices,
        help_text=_("Not needed for “channel is”, “source grade is” and “late first response”."),
    )
    operator = models.CharField(_("operator"), max_length=20, choices=ScoreOperator.choices)
    value = models.CharField(
        _("value"), max_length=300, blank=True, help_text=_("Lists: separated by commas.")
    )
    points = models.SmallIntegerField(
        _("points"), validators=[MinValueValidator(-100), MaxValueValidator(100)]
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("score rule")
        verbose_name_plural = _("score rules")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        if self.label:
            return self.label
        parts = (self.get_field_display(), self.get_operator_display(), self.value)
        return " ".join(str(p) for p in parts if p)

    def clean(self) -> None:
        errors = rule_errors(self.field, self.operator, self.value)
        if errors:
            raise ValidationError(errors)


class AssignmentDecision(TenantOwned):
    """Why a lead went where it went (F12): every candidate with its eligibility verdict
    and score breakdown, the fairness ledger as it stood, the tie-break seed and the
    policy version. Written once, never edited."""

    lead = TenantForeignKey(
        Lead, on_delete=models.CASCADE, related_name="decisions", verbose_name=_("lead")
    )
    policy = TenantForeignKey(
        AssignmentPolicy,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
        verbose_name=_("policy version"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=DecisionKind.choices)
    outcome = models.CharField(_("outcome"), max_length=10, choices=DecisionOutcome.choices)
    chosen = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("chosen rep"),
    )
    previous_owner = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("previous owner"),
    )
    decided_at = models.DateTimeField(_("decided at"), default=timezone.now)
    seed = models.BigIntegerField(_("tie-break seed"), null=True, blank=True)
    lead_score = models.IntegerField(_("lead score"), null=True, blank=True)
    score_breakdown = models.JSONField(_("score breakdown"), default=list, blank=True)
    candidates = models.JSONField(_("candidates"), default=list, blank=True)
    relaxed = models.JSONField(_("criteria dropped"), default=list, blank=True)
    hot_zone = models.BooleanField(_("hot zone first"), default=False)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("assignment decision")
        verbose_name_plural = _("assignment decisions")
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "lead", "-decided_at"], name="decision_lead"),
            models.Index(fields=["tenant", "-decided_at"], name="decision_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.lead} → {self.chosen or self.get_outcome_display()}"


class RepLedgerDay(TenantOwned):
    """The fairness ledger (F10), one row per rep and day in the tenant's time zone.

    `expected` adds, for every decision the rep was eligible for, their share of it
    (share weight ÷ the eligible reps' total); `received` counts the leads they got. A rep
    on leave is eligible for nothing, so their expectation does not grow: on return they
    are neither owed a flood nor behind."""

    membership = TenantForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("rep")
    )
    day = models.DateField(_("day"))
    expected = models.FloatField(_("expected"), default=0)
    received = models.IntegerField(_("received"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("ledger day")
        verbose_name_plural = _("ledger days")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership", "day"], name="repledgerday_one_per_day"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="ledger_tenant_day")]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.day}: {self.received}/{self.expected:.2f}"


class ReplayRun(TenantOwned):
    """One simulation of the draft policy over the last N days (F14); touches no lead."""

    policy = TenantForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="replays", verbose_name=_("draft")
    )
    baseline = TenantForeignKey(
        AssignmentPolicy,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("compared with"),
    )
    days = models.PositiveSmallIntegerField(
        _("days"), default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    parameters = models.JSONField(_("draft as simulated"), default=dict)
    status = models.CharField(
        _("status"), max_length=10, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED
    )
    result = models.JSONField(_("result"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("replay")
        verbose_name_plural = _("replays")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.policy} · {self.days} d · {self.get_status_display()}"
