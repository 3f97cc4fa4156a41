"""Automation rules (F47): the rules a tenant admin writes, what the engine keeps per rule
and object (state, firings), the run log, and the tasks a rule puts on a board.
See docs/automation.md."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.models import Membership, OutboxEvent, Role, Tenant, TenantOwned

# The longest window a rule may count over: the event log is kept at least this long plus
# the dry run's 30 days (crm.log_retention; docs/automation.md, "Retention").
MAX_COUNT_DAYS = 365


class Action(models.TextChoices):
    NOTIFY = "notify", _("Notify")
    TASK = "task", _("Task on the board")
    SET_LEVEL = "set_level", _("Set the customer's level")
    WEBHOOK = "webhook", _("Call a webhook")


def action_choices() -> list[tuple[str, str]]:
    """The engine's actions, then those the apps offer (crm.events.register_action)."""
    from crm.events import rule_actions

    return [*Action.choices, *((a.key, a.label) for a in rule_actions())]


class Outcome(models.TextChoices):
    FIRED = "fired", _("Fired")
    NOT_MATCHED = "not_matched", _("Condition false")
    STILL_TRUE = "still_true", _("Still true (fired before)")
    COOLDOWN = "cooldown", _("In cool-down")
    DUPLICATE = "duplicate", _("Already fired in this window")
    DEPTH_LIMIT = "depth_limit", _("Chain too deep")
    OWN_CHANGE = "own_change", _("Its own change")
    FAILED = "failed", _("Action failed")
    WAITING = "waiting", _("Waiting for its time")
    CANCELLED = "cancelled", _("The awaited event came")


class Rule(TenantOwned):
    """Event → condition → action. Off until the admin switches it on; paused by the
    engine after FAILURES_TO_PAUSE failed actions in a row."""

    name = models.CharField(_("name"), max_length=100)
    trigger = models.CharField(_("when"), max_length=40)
    condition = models.TextField(
        _("condition"),
        blank=True,
        help_text=_(
            'An expression over the event\'s fields, e.g. amount > 100000 and stage == "won"; '
            "empty: always."
        ),
    )
    count_at_least = models.PositiveIntegerField(
        _("at least this many times"),
        null=True,
        blank=True,
        help_text=_("Also require this many events of the kind for the same subject."),
    )
    count_days = models.PositiveSmallIntegerField(
        _("within days"),
        default=30,
        validators=[MaxValueValidator(MAX_COUNT_DAYS)],
        help_text=_("At most 365 days."),
    )
    count_same = models.CharField(
        _("with the same"),
        max_length=200,
        blank=True,
        help_text=_("Fields that must also be equal, comma-separated, e.g. product_model."),
    )
    wait_hours = models.PositiveIntegerField(
        _("after hours"),
        null=True,
        blank=True,
        help_text=_("Act this many hours after the event instead of at once …"),
    )
    unless_kind = models.CharField(
        _("unless meanwhile"),
        max_length=40,
        blank=True,
        help_text=_("… unless an event of this kind about the same subject comes first."),
    )
    action = models.CharField(_("then"), max_length=16, choices=action_choices)
    to_owner = models.BooleanField(
        _("to the owner"), default=False, help_text=_("The event's owner (its owner_id field).")
    )
    to_role = models.CharField(
        _("to everyone with role"), max_length=16, blank=True, choices=Role.choices
    )
    to_member = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("to the member"),
    )
    message = models.CharField(_("message"), max_length=200, blank=True)
    level = models.CharField(_("level to set"), max_length=1, blank=True)
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    webhook_secret = models.CharField(
        _("webhook secret"),
        max_length=200,
        blank=True,
        help_text=_("Signs each call (X-CRM-Signature: HMAC-SHA256 of timestamp.body)."),
    )
    cooldown_minutes = models.PositiveIntegerField(
        _("cool-down (minutes)"),
        default=24 * 60,
        help_text=_("After firing for a subject, not again for it within this time."),
    )
    is_active = models.BooleanField(_("on"), default=False)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(_("failures in a row"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("automation rule")
        verbose_name_plural = _("automation rules")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["tenant", "trigger", "is_active"], name="rule_trigger")]

    def __str__(self) -> str:
        return self.name

    @property
    def same_fields(self) -> list[str]:
        return [f.strip() for f in self.count_same.split(",") if f.strip()]

    @property
    def live(self) -> bool:
        return self.is_active and self.paused_at is None


class RuleState(TenantOwned):
    """A rule's last result for one subject: it fires on a change from false to true."""

    rule = TenantForeignKey(Rule, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(_("subject"), max_length=80)
    is_true = models.BooleanField(default=False)
    last_fired_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "rule", "subject"], name="rulestate_one"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} · {self.subject}"


class Firing(TenantOwned):
    """The dedup key: a rule fires at most once per subject and window (two workers
    evaluating the same change cannot both insert it). Deleted once it can deduplicate
    nothing more (automation.log_retention): the rule's cool-down and a day after it was
    made, found per rule through `firing_rule_at`."""

    rule = TenantForeignKey(Rule, on_delete=models.CASCADE, related_name="firings")
    subject = models.CharField(max_length=80)
    window = models.BigIntegerField()
    at = models.DateTimeField(default=timezone.now)

    class Meta(TenantOwned.Meta):
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "rule", "subject", "window"], name="firing_dedup"
            ),
        ]
        indexes = [
            # The nightly retention: a rule's firings older than its cool-down, as a range.
            models.Index(fields=["tenant", "rule", "at"], name="firing_rule_at"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} · {self.subject} · {self.window}"


def _unchecked(to, verbose_name, **options) -> models.ForeignKey:
    """A reference of the run log's: no index and no constraint in the database (the log
    is written in bulk, for rows the engine has just read in the same transaction)."""
    options.setdefault("related_name", "+")
    return models.ForeignKey(
        to, verbose_name=verbose_name, db_index=False, db_constraint=False, **options
    )


class Run(TenantOwned):
    """One evaluation of a rule on an event, whatever came of it, except a plain false
    condition on a drained event: those are a `Miss`, one row per event for all its rules
    (automation.runlog reads both as one log). Written by a drained batch in one
    statement, so it keeps only the indexes it is read by: the tenant's and the rule's
    lookups go through `run_rule_at` (row-level security adds the tenant to every
    statement), none on the event alone. And no
    foreign-key constraint in the database (three checks per row at each commit): the
    engine writes a run only for the rule and event it has just read in the same
    transaction, and the ORM's deletes of a tenant, a rule or an event still cascade."""

    tenant = _unchecked(Tenant, _("tenant"), on_delete=models.CASCADE)
    rule = _unchecked(Rule, _("rule"), on_delete=models.CASCADE, related_name="runs")
    event = _unchecked(OutboxEvent, _("event"), on_delete=models.SET_NULL, null=True)
    kind = models.CharField(_("event"), max_length=40)
    subject = models.CharField(_("subject"), max_length=80)
    at = models.DateTimeField(_("at"), default=timezone.now)
    values = models.JSONField(_("values"), default=dict, blank=True)
    count = models.PositiveIntegerField(_("count"), null=True, blank=True)
    matched = models.BooleanField(_("condition true"), null=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("rule run")
        verbose_name_plural = _("rule runs")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "rule", "-at"], name="run_rule_at"),
            # "Why did it not fire" for one subject.
            models.Index(fields=["tenant", "rule", "subject", "-at"], name="run_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} · {self.subject} · {self.get_outcome_display()}"


class Miss(TenantOwned):
    """The run log's "condition false" entries of one drained event: the live rules of its
    kind whose condition (or windowed count) was false on it, with their counts. One row
    per event instead of one per event and rule: most rules are false on most events, and
    at a thousand events a second through fifty rules the log would otherwise be written at
    fifty thousand rows a second. The values a condition read are the event's own data
    (the outbox keeps it); automation.runlog shows each entry as a run. No database
    constraint on the references, as for `Run`; a deleted event leaves its entries, which
    then show no values."""

    tenant = _unchecked(Tenant, _("tenant"), on_delete=models.CASCADE)
    event = _unchecked(OutboxEvent, _("event"), on_delete=models.DO_NOTHING, null=True)
    kind = models.CharField(_("event kind"), max_length=40)
    # The subjects the rules fire once for: the event's key (a windowed count's rules) and
    # its own object ("ticket:12", the other rules'), as `engine.subject_of` makes them.
    key = models.CharField(_("counted subject"), max_length=80)
    object = models.CharField(_("object"), max_length=80)
    at = models.DateTimeField(_("at"), default=timezone.now)
    rules = ArrayField(models.BigIntegerField(), verbose_name=_("rules"))
    counts = ArrayField(
        models.IntegerField(null=True), verbose_name=_("counts"), help_text=_("per rule")
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("condition false")
        verbose_name_plural = _("conditions false")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "key", "-at"], name="miss_key_at"),
            models.Index(fields=["tenant", "object", "-at"], name="miss_object_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} · {self.object}"


class Due(TenantOwned):
    """A time condition's clock: the rule acts at `due_at` on `event` unless the awaited
    event came first. A row in PostgreSQL that the beat sweep claims, never a Celery
    countdown; unique per (rule, event), so two evaluations cannot start two clocks."""

    rule = TenantForeignKey(Rule, on_delete=models.CASCADE, related_name="dues")
    event = TenantForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=80)
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "rule", "event"], name="due_once"),
        ]
        indexes = [
            # The sweep: the tenant's clocks that are due and not handled.
            models.Index(
                fields=["tenant", "due_at"],
                condition=models.Q(done_at__isnull=True),
                name="due_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} · {self.subject} · {self.due_at:%Y-%m-%d %H:%M}"


class Task(TenantOwned):
    """A task a rule put on a member's board, until they mark it done."""

    rule = TenantForeignKey(
        Rule, null=True, on_delete=models.SET_NULL, related_name="tasks", verbose_name=_("rule")
    )
    assignee = TenantForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("for")
    )
    title = models.CharField(_("task"), max_length=200)
    subject = models.CharField(_("subject"), max_length=80)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("automation task")
        verbose_name_plural = _("automation tasks")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "assignee", "done_at", "created_at"], name="task_open")
        ]

    def __str__(self) -> str:
        return self.title


class CallStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    HELD = "held", _("Held (rule paused)")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Dead (gave up)")


class WebhookCall(TenantOwned):
    """A webhook action's call, written by the engine with the firing and sent by a worker
    after the commit (`automation.webhooks`), outside any transaction: retried with
    backoff, held while its rule is paused (the rule is its circuit breaker)."""

    rule = TenantForeignKey(
        Rule, on_delete=models.CASCADE, related_name="calls", verbose_name=_("rule")
    )
    event = TenantForeignKey(OutboxEvent, null=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.CharField(_("subject"), max_length=80)
    url = models.URLField(_("webhook URL"), max_length=500)
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=8, choices=CallStatus.choices, default=CallStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("webhook call")
        verbose_name_plural = _("webhook calls")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sender: the tenant's calls to try now.
            models.Index(
                fields=["tenant", "next_attempt_at"],
                condition=models.Q(status__in=["pending", "failed"]),
                name="webhookcall_due",
            ),
            models.Index(fields=["tenant", "rule", "status"], name="webhookcall_rule"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} · {self.subject} · {self.get_status_display()}"
