"""Customer health (F31–F35): signals, six dimensions, nightly snapshots, the risk list.

- `Signal`: what a customer did that sales does not log by hand: a document downloaded,
  a quote opened, a web visit, a search (a competitor's name in it makes it a competitor
  search). Append-only. They arrive by `POST /track/<key>/` (signed, health.signals) and
  by tracked links `/t/<token>` (`TrackedLink`, a redirect or a 1×1 pixel).
- `HealthSettings`: the tenant's six weights (summing to 100), the bands that turn each
  dimension's value into 0–100, the risk-list rule and the competitor keywords.
- `HealthSnapshot`: one row per customer and day, with every dimension's value and score,
  the overall score (NULL when no dimension has data) and its coverage. Written by the
  set-based recompute (health.compute), idempotent per day.
- `RiskEntry`: a stay on the risk list (entered, left), with its retention task.
- `PlaybookStep`: what to do for a customer at risk, by its weakest dimension.

docs/health.md is the map.
"""

from __future__ import annotations

import itertools
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.models import Membership, TenantOwned
from customers.models import Contact, Customer

# -- the six dimensions -----------------------------------------------------------------------


class Dimension(models.TextChoices):
    RECENCY = "recency", _("Days since last interaction")
    FREQUENCY = "frequency", _("Interactions in 90 days")
    SERVICE = "service", _("Tickets solved on time")
    DOWNLOADS = "downloads", _("Document downloads in 90 days")
    QUOTES = "quotes", _("Quote open rate")
    COMPETITOR = "competitor", _("Competitor searches in 90 days")


# The dimensions whose score falls as their value rises.
LOWER_IS_BETTER = frozenset({Dimension.RECENCY, Dimension.COMPETITOR})

# Bands: value → score. For a dimension where more is better, the first band whose
# threshold the value reaches (value ≥ threshold), thresholds falling; where less is
# better, the first band whose threshold the value does not pass (value ≤ threshold),
# thresholds rising. A value no band takes gets `else`.
DEFAULT_BANDS: dict[str, dict] = {
    Dimension.RECENCY: {"bands": [[7, 100], [14, 85], [30, 65], [60, 40], [90, 20]], "else": 0},
    Dimension.FREQUENCY: {"bands": [[12, 100], [6, 80], [3, 60], [1, 40]], "else": 10},
    Dimension.SERVICE: {"bands": [[95, 100], [85, 80], [70, 60], [50, 40]], "else": 15},
    Dimension.DOWNLOADS: {"bands": [[5, 100], [3, 80], [1, 60]], "else": 30},
    Dimension.QUOTES: {"bands": [[80, 100], [50, 75], [25, 50], [1, 30]], "else": 0},
    Dimension.COMPETITOR: {"bands": [[0, 100], [2, 70], [5, 40]], "else": 10},
}
DEFAULT_WEIGHTS: dict[str, int] = {
    Dimension.RECENCY: 25,
    Dimension.FREQUENCY: 20,
    Dimension.SERVICE: 20,
    Dimension.DOWNLOADS: 10,
    Dimension.QUOTES: 15,
    Dimension.COMPETITOR: 10,
}
# The units a dimension's value is shown in.
UNITS = {
    Dimension.RECENCY: _("days"),
    Dimension.FREQUENCY: _("interactions"),
    Dimension.SERVICE: "%",
    Dimension.DOWNLOADS: _("downloads"),
    Dimension.QUOTES: "%",
    Dimension.COMPETITOR: _("searches"),
}
DEFAULT_COMPETITORS = "西门子\n施耐德\nABB\n罗克韦尔"
DEFAULT_PLAYBOOK = "定制化技术方案 + 限时服务响应承诺"


def weight_field(dimension: Dimension):
    return models.PositiveSmallIntegerField(
        dimension.label,
        default=DEFAULT_WEIGHTS[dimension],
        validators=[MaxValueValidator(100)],
    )


def band_problems(dimension: str, value) -> list[str]:
    """What is wrong with one dimension's bands (empty when they are usable)."""
    if not isinstance(value, dict) or not isinstance(value.get("bands"), list):
        return [str(_("give a list of [threshold, score] bands and an else score"))]
    problems = []
    bands = value["bands"]
    if not 1 <= len(bands) <= 8:
        problems.append(str(_("between 1 and 8 bands")))
    thresholds = []
    for band in bands:
        if (
            not isinstance(band, list | tuple)
            or len(band) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in band)
        ):
            problems.append(str(_("each band is [threshold, score], two numbers")))
            return problems
        threshold, score = band
        if threshold < 0:
            problems.append(str(_("a threshold cannot be negative")))
        if not 0 <= score <= 100 or score != int(score):
            problems.append(str(_("a score is a whole number from 0 to 100")))
        thresholds.append(threshold)
    rising = dimension in LOWER_IS_BETTER
    pairs = list(itertools.pairwise(thresholds))
    if rising and any(b <= a for a, b in pairs):
        problems.append(str(_("thresholds must rise (less is better here)")))
    if not rising and any(b >= a for a, b in pairs):
        problems.append(str(_("thresholds must fall (more is better here)")))
    other = value.get("else")
    if not isinstance(other, int) or isinstance(other, bool) or not 0 <= other <= 100:
        problems.append(str(_("the else score is a whole number from 0 to 100")))
    return problems


def new_key() -> str:
    return secrets.token_urlsafe(24)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class HealthSettings(TenantOwned):
    """The tenant's health rules (one row per tenant, created with the defaults)."""

    weight_recency = weight_field(Dimension.RECENCY)
    weight_frequency = weight_field(Dimension.FREQUENCY)
    weight_service = weight_field(Dimension.SERVICE)
    weight_downloads = weight_field(Dimension.DOWNLOADS)
    weight_quotes = weight_field(Dimension.QUOTES)
    weight_competitor = weight_field(Dimension.COMPETITOR)
    bands = models.JSONField(
        _("bands"),
        default=dict,
        blank=True,
        help_text=_("Per dimension: the [threshold, score] bands and the else score."),
    )
    risk_score_below = models.PositiveSmallIntegerField(
        _("at risk below this score"), default=60, validators=[MaxValueValidator(100)]
    )
    risk_quiet_days = models.PositiveSmallIntegerField(
        _("and no interaction for this many days"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    competitor_keywords = models.TextField(
        _("competitor keywords"),
        default=DEFAULT_COMPETITORS,
        blank=True,
        help_text=_("One per line: a web search naming one is a competitor search."),
    )
    # The tracking endpoint's key (in the URL) and its signing secret.
    # Unique per tenant (with health_settings_one, the tenant's only row); across tenants by
    # its 192 random bits. Found by itself through `health_settings_by_key`.
    track_key = models.CharField(_("tracking key"), max_length=64, default=new_key)
    track_secret = models.CharField(_("tracking secret"), max_length=64, default=new_secret)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The last day scored (the tenant's local day) and when: the nightly run's "done today".
    computed_on = models.DateField(_("last day scored"), null=True, blank=True, editable=False)
    computed_at = models.DateTimeField(_("last scored at"), null=True, blank=True, editable=False)

    class Meta(TenantOwned.Meta):
        verbose_name = _("health settings")
        verbose_name_plural = _("health settings")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant"], name="health_settings_one"),
            models.UniqueConstraint(fields=["tenant", "track_key"], name="health_track_key"),
        ]
        indexes = [models.Index(fields=["track_key"], name="health_settings_track_key")]

    def __str__(self) -> str:
        return str(_("Health settings"))

    @classmethod
    def for_tenant(cls, tenant, *, create: bool = True) -> HealthSettings:
        """The tenant's settings: its row, created with the defaults on first use (with
        `create` False: the defaults, unsaved)."""
        found = cls.objects.filter(tenant=tenant).first()
        if found is None and not create:
            return cls(tenant=tenant)
        if found is None:
            cls.objects.bulk_create([cls(tenant=tenant)], ignore_conflicts=True)
            found = cls.objects.get(tenant=tenant)
        found.tenant = tenant
        return found

    def weights(self) -> dict[str, int]:
        return {d: getattr(self, f"weight_{d}") for d in Dimension.values}

    def band_table(self) -> dict[str, dict]:
        """Every dimension's bands: the tenant's where it set them, else the defaults."""
        own = self.bands if isinstance(self.bands, dict) else {}
        return {d: own.get(d) or DEFAULT_BANDS[d] for d in Dimension.values}

    def competitor_list(self) -> list[str]:
        words = (w.strip() for w in (self.competitor_keywords or "").splitlines())
        return sorted({w for w in words if w})

    def clean(self) -> None:
        errors: dict[str, list] = {}
        total = sum(self.weights().values())
        if total != 100:
            errors["weight_recency"] = [
                _("The six weights must sum to 100 (they sum to %(total)d).") % {"total": total}
            ]
        own = self.bands if isinstance(self.bands, dict) else None
        if own is None:
            errors["bands"] = [_("Bands must be an object keyed by dimension.")]
        else:
            unknown = sorted(set(own) - set(Dimension.values))
            if unknown:
                errors["bands"] = [
                    _("Unknown dimension(s): %(names)s.") % {"names": ", ".join(unknown)}
                ]
            for dimension in Dimension.values:
                if dimension in own:
                    for problem in band_problems(dimension, own[dimension]):
                        errors.setdefault("bands", []).append(
                            f"{Dimension(dimension).label}: {problem}"
                        )
        if errors:
            raise ValidationError(errors)


# -- signals ----------------------------------------------------------------------------------


class SignalKind(models.TextChoices):
    DOWNLOAD = "download", _("Document downloaded")
    QUOTE_OPEN = "quote_open", _("Quote opened")
    VISIT = "visit", _("Web visit")
    SEARCH = "search", _("Web search")
    COMPETITOR_SEARCH = "competitor_search", _("Competitor search")


class ResolvedBy(models.TextChoices):
    TOKEN = "token", _("tracked link")
    EMAIL = "email", _("contact e-mail")
    PHONE = "phone", _("contact phone")
    CODE = "code", _("customer code")


class LinkKind(models.TextChoices):
    DOCUMENT = "document", _("Document")
    QUOTE = "quote", _("Quote")


class TrackedLink(TenantOwned):
    """A document or quote sent to a customer through `/t/<token>`: opening it redirects
    to `target_url` and records a signal (a download, or a quote opened); the e-mail
    pixel `/t/<token>.gif` records the same. `sent_at` is when it was sent: the quote
    open rate is opened ÷ sent."""

    # Unique per tenant; across tenants by its 192 random bits. Found by itself through
    # `health_link_by_token`.
    token = models.CharField(max_length=40, default=new_key, editable=False)
    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    contact = TenantForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("contact"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=LinkKind.choices)
    title = models.CharField(_("title"), max_length=200)
    target_url = models.URLField(_("target address"), max_length=1000)
    created_by = TenantForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent by"),
    )
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    first_opened_at = models.DateTimeField(_("first opened"), null=True, blank=True)
    open_count = models.PositiveIntegerField(_("opens"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("tracked link")
        verbose_name_plural = _("tracked links")
        ordering = ["-sent_at"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "token"], name="tracked_link_token"),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "customer", "kind", "sent_at"], name="tracked_link_cust"
            ),
            models.Index(fields=["token"], name="tracked_link_by_token"),
        ]

    def __str__(self) -> str:
        return self.title


class Signal(TenantOwned):
    """One thing a customer did (append-only: never updated)."""

    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    contact = TenantForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("contact"),
    )
    link = TenantForeignKey(
        TrackedLink,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="signals",
        verbose_name=_("tracked link"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=SignalKind.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    resolved_by = models.CharField(_("matched by"), max_length=10, choices=ResolvedBy.choices)
    url = models.CharField(_("address"), max_length=1000, blank=True)
    query = models.CharField(_("search terms"), max_length=200, blank=True)
    competitor = models.CharField(_("competitor"), max_length=60, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("signal")
        verbose_name_plural = _("signals")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "customer", "kind", "at"], name="signal_cust")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.at:%Y-%m-%d}"


# -- snapshots --------------------------------------------------------------------------------


def _value(name: str):
    return models.FloatField(name, null=True, blank=True)


def _score(name: str):
    return models.PositiveSmallIntegerField(name, null=True, blank=True)


class HealthSnapshot(TenantOwned):
    """A customer's health on a day (the tenant's local day; values as of its start).
    Each dimension's `*_value` is NULL when the customer has no data for it, and then its
    `*_score` too; `score` is the weighted mean of the dimensions with data, NULL when
    none has (`coverage` = how many have)."""

    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    day = models.DateField(_("day"))
    score = models.PositiveSmallIntegerField(_("health score"), null=True, blank=True)
    coverage = models.PositiveSmallIntegerField(_("dimensions with data"), default=0)
    recency_value = _value("recency value")
    recency_score = _score("recency score")
    frequency_value = _value("frequency value")
    frequency_score = _score("frequency score")
    service_value = _value("service value")
    service_score = _score("service score")
    downloads_value = _value("downloads value")
    downloads_score = _score("downloads score")
    quotes_value = _value("quotes value")
    quotes_score = _score("quotes score")
    competitor_value = _value("competitor value")
    competitor_score = _score("competitor score")
    # The weights the score was computed with (the snapshot explains itself later).
    weights = models.JSONField(_("weights"), default=dict)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("health snapshot")
        verbose_name_plural = _("health snapshots")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "customer", "day"], name="health_snapshot_day"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "day", "score"], name="health_snapshot_day_score")
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.score if self.score is not None else '—'}"


# -- the risk list ----------------------------------------------------------------------------


class PlaybookStep(TenantOwned):
    """What the owner does for a customer that entered the risk list: the step of its
    weakest dimension, else the step without a dimension."""

    dimension = models.CharField(
        _("weakest dimension"),
        max_length=12,
        choices=Dimension.choices,
        blank=True,
        help_text=_("Leave empty for the default step."),
    )
    action = models.CharField(_("retention action"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("playbook step")
        verbose_name_plural = _("playbook steps")
        ordering = ["dimension"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "dimension"],
                condition=Q(is_active=True),
                name="playbook_step_one_active",
            ),
        ]

    def __str__(self) -> str:
        return self.action


class RiskEntry(TenantOwned):
    """One stay of a customer on the risk list: entered on a day's recompute, left on the
    first day it no longer qualifies. Its retention task (`action`, the playbook step) is
    given by the tenant's automation rule "a customer entered the risk list → retention
    task" (`task_at`, health.risk.retention_task); from then on it sits on the owner's
    board until done or until the customer leaves the list."""

    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    owner = TenantForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    entered_on = models.DateField(_("entered on"))
    left_on = models.DateField(_("left on"), null=True, blank=True)
    score = models.PositiveSmallIntegerField(_("score on entry"))
    weakest = models.CharField(
        _("weakest dimension"), max_length=12, choices=Dimension.choices, blank=True
    )
    action = models.CharField(_("retention action"), max_length=200)
    # NULL: no rule gave the task (the recompute opens stays without it). A stay made
    # otherwise (by hand, before the rule existed) has its task.
    task_at = models.DateTimeField(_("task given"), null=True, blank=True, default=timezone.now)
    done_at = models.DateTimeField(_("task done"), null=True, blank=True)
    done_by = TenantForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("done by"),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("risk list entry")
        verbose_name_plural = _("risk list entries")
        ordering = ["-entered_on"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "customer"],
                condition=Q(left_on__isnull=True),
                name="risk_entry_one_open",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "owner"],
                condition=Q(left_on__isnull=True, done_at__isnull=True),
                name="risk_entry_open_task",
            ),
            # The risk list's sorts (health.views_risk.RiskTable): entered on, the default
            # (newest first), and owner (a rep's own list, the owner filter, the owner sort).
            models.Index(
                "tenant",
                F("entered_on").desc(),
                F("id").desc(),
                condition=Q(left_on__isnull=True),
                name="risk_entry_open_entered",
            ),
            models.Index(
                "tenant",
                "owner",
                F("entered_on").desc(),
                F("id").desc(),
                condition=Q(left_on__isnull=True),
                name="risk_entry_open_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} · {self.entered_on}"
