"""The leads app's choices and constants: every enum its models, forms and services
share. Imports no model, so anything may import it."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

REVISIT_WINDOW = timedelta(days=30)
REPLAY_WINDOW = timedelta(hours=24)


# --- Intake (F1–F7) -------------------------------------------------------------------------


class ChannelType(models.TextChoices):
    WEB_FORM = "web_form", _("Website form")
    WECHAT_OA = "wechat_oa", _("WeChat official account")
    TRADE_SHOW_QR = "trade_show_qr", _("Trade-show QR code")
    DOUYIN = "douyin", _("Douyin lead ads")
    WECOM = "wecom", _("WeCom external contact")
    SMS = "sms", _("SMS gateway")
    CALL_CENTER = "call_center", _("400 call centre")
    IMPORT = "import", _("Import (CSV/Excel)")
    # Its events become tickets, not leads (the handler registered in crm.inbox).
    HELPDESK = "helpdesk", _("Helpdesk (tickets)")


class SourceGrade(models.TextChoices):
    A = "A", _("A class")
    B = "B", _("B class")
    C = "C", _("C class")


class MappingPreset(models.TextChoices):
    NONE = "", _("None: lead field names as sent")
    DOUYIN = "douyin", _("Douyin lead-ads push")
    SMS = "sms", _("SMS gateway")
    CALL_CENTER = "call_center", _("400 call-centre event")
    WECOM = "wecom", _("WeCom external contact added")


def preset_choices() -> list[tuple[str, str]]:
    """Channel.preset's choices: the lead presets, then those of the channel types whose
    events another app handles (crm.inbox, e.g. the helpdesk formats)."""
    from crm import inbox

    return [*MappingPreset.choices, *inbox.preset_choices()]


def presets_for(channel_type: str) -> list[str]:
    """The preset codes a channel of `channel_type` may declare (the blank one included)."""
    from crm import inbox

    handler = inbox.handler_for(channel_type)
    if handler is not None:
        return ["", *handler.presets]
    return list(MappingPreset.values)


class TagColor(models.TextChoices):
    """The badge colours (Bootstrap's names, used as CSS classes on the pages)."""

    PRIMARY = "primary", _("Blue")
    INFO = "info", _("Cyan")
    SUCCESS = "success", _("Green")
    WARNING = "warning", _("Yellow")
    DANGER = "danger", _("Red")
    SECONDARY = "secondary", _("Grey")
    DARK = "dark", _("Black")


class EventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    FORM = "form", _("Hosted form")
    WECOM = "wecom", _("WeCom callback")
    IMPORT = "import", _("Import")


class ImportStatus(models.TextChoices):
    PREVIEW = "preview", _("Preview")
    CONFIRMED = "confirmed", _("Confirmed")


# --- Leads and their timeline (F7, F16, F20) ------------------------------------------------


class LeadStatus(models.TextChoices):
    NEW = "new", _("New")
    ASSIGNED = "assigned", _("Assigned")
    VALID = "valid", _("Valid")
    INVALID = "invalid", _("Invalid")


class RegistryStatus(models.TextChoices):
    NOT_CHECKED = "", _("Not checked")
    VERIFIED = "verified", _("Verified")
    NOT_FOUND = "not_found", _("Not found")
    ERROR = "error", _("Check failed")


class Verification(models.TextChoices):
    """The rep's verdict on a lead (F16): two valid outcomes, two invalid ones."""

    VALID_VISIT = "valid_visit", _("Valid · visit booked")
    VALID_MORE_INFO = "valid_more_info", _("Valid · needs more information")
    INVALID_CONTACT = "invalid_contact", _("Invalid · wrong contact details")
    INVALID_NOT_TARGET = "invalid_not_target", _("Invalid · not a target customer")

    @classmethod
    def valid(cls) -> set[str]:
        return {cls.VALID_VISIT, cls.VALID_MORE_INFO}


class LeadEventKind(models.TextChoices):
    INTAKE = "intake", _("Received")
    TAGGED = "tagged", _("Tagged")
    REVISIT = "revisit", _("Revisit of an earlier lead")
    SUSPECT = "suspect", _("Flagged as suspect")
    REGISTRY = "registry", _("Business registry check")
    ASSIGNED = "assigned", _("Assigned")
    WAITING = "waiting", _("Waiting for an eligible rep")
    POOLED = "pooled", _("Put in the pool")
    REASSIGNED = "reassigned", _("Reassigned")
    TOUCH = "touch", _("Contacted")
    SLA = "sla", _("SLA alert")
    VERIFIED = "verified", pgettext_lazy("lead verification", "Verified")
    FOLLOW_UP = "follow_up", _("Follow-up")


# --- Assignment (F8–F14) ----------------------------------------------------------------
# Decisions and rules are explained in docs/assignment.md.


class PoolReason(models.TextChoices):
    NO_CANDIDATE = "no_candidate", _("No eligible rep, even with optional criteria dropped")
    NO_SECOND_TOUCH = "no_second_touch", _("No second touch within 72 h of the first")
    MANUAL = "manual", _("Put back in the pool by a manager")
    FAILED = "failed", _("Assignment failed")


class ResponseTier(models.TextChoices):
    FAST = "fast", _("Responds within 15 minutes")
    NORMAL = "normal", _("Responds within 1 hour")
    SLOW = "slow", _("Responds the same day")


class CyclePreference(models.TextChoices):
    SHORT = "short", _("Short, quick deals")
    LONG = "long", _("Long, nurtured deals")
    ANY = "any", _("Either")


class Zone(models.TextChoices):
    NORMAL = "", _("Normal")
    OBSERVATION = "observation", _("Observation zone: paused from dispatch")
    PROBATION = "probation", _("Observation zone: back on probation")


class PolicyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class ScoreField(models.TextChoices):
    CHANNEL_TYPE = "channel_type", _("Channel type")
    BUDGET = "budget", _("Budget (yuan)")
    MESSAGE = "message", _("Enquiry text")
    COMPANY = "company", _("Company")
    INDUSTRY = "industry", _("Industry")
    PROVINCE = "province", _("Province")
    CITY = "city", _("City")
    COMPANY_SIZE = "company_size", _("Company size class")
    IN_TENDER = "in_tender", _("In a tender")
    SAMPLE_PROVIDED = "sample_provided", _("Sample provided")
    TAG = "tag", _("Tag")
    SUSPECT = "is_suspect", _("Suspect")
    REVISIT = "is_revisit", _("Revisit")


class ScoreOperator(models.TextChoices):
    EQUALS = "eq", _("equals")
    IN = "in", _("is one of")
    GT = "gt", _("greater than")
    LT = "lt", _("less than")
    CONTAINS = "contains", _("contains the keyword")
    CHANNEL_IS = "channel_is", _("channel is")
    GRADE_IS = "grade_is", _("source grade is")
    LATE_FIRST_RESPONSE = "late_first_response", _("first response later than (minutes)")


class DecisionKind(models.TextChoices):
    AUTO = "auto", _("Automatic")
    RETRY = "retry", _("Retried after the wait")
    REVISIT = "revisit", _("Revisit: to the first lead's owner")
    RETURN = "return", _("Returned to the pool and dispatched again")
    MANUAL = "manual", _("Reassigned by a manager")


class DecisionOutcome(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned")
    WAITING = "waiting", _("Waiting for an eligible rep")
    POOLED = "pooled", _("Put in the pool")


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


# --- SLA clocks (F11, F13) ----------------------------------------------------------------


class SalesModel(models.TextChoices):
    """How fast a tenant's leads expect an answer: the response-time water level's target
    (crm.levels, leads.reports.levels), the median minutes from assignment to first touch."""

    B2B = "b2b", _("B2B: a median first response within 2 hours")
    B2C = "b2c", _("B2C: a median first response within 15 minutes")


RESPONSE_TARGET_MINUTES = {SalesModel.B2B: 120, SalesModel.B2C: 15}


class SlaThreshold(models.TextChoices):
    A_UNASSIGNED = "a_unassigned", _("A-class lead unassigned")
    UNASSIGNED = "unassigned", _("Lead unassigned")
    UNVERIFIED_REP = "unverified_rep", _("Not verified: rep reminded")
    UNVERIFIED_MANAGER = "unverified_mgr", _("Not verified: manager told")
    NO_FOLLOWUP = "no_followup", _("Valid lead without follow-up")
    NO_SECOND_TOUCH = "no_second_touch", _("No second touch: back to the pool")
