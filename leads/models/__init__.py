"""The leads app's models, one module per topic:

- `choices`: every enum and constant, no model;
- `intake`: channels, the inbound-event inbox, tags and tagging rules, import batches;
- `lead`: leads, their timeline and the preset invalid reasons;
- `score_rules`: a score rule's validation;
- `assignment`: rep profiles, policies and score rules, decisions, ledger, replays;
- `sla`: SLA thresholds and alerts;
- `board`: board settings and the reps' closed days;
- `reports`: the lead-quality report's roll-ups;
- `search`: the lead search's gram table (filled by triggers);
- `activity`: the lead activity index's daily rows (F41).

Everything stays importable from `leads.models`.
"""

from customers.models import ContactMethod, Industry
from leads.models.activity import ActivityRun, LeadActivity, RepActivity
from leads.models.assignment import (
    AssignmentDecision,
    AssignmentPolicy,
    ReplayRun,
    RepLedgerDay,
    RepProfile,
    ScoreRule,
    profile_of,
    rep_available,
)
from leads.models.board import BoardSettings, DailySummary, RepActiveDay
from leads.models.choices import (
    REPLAY_WINDOW,
    RESPONSE_TARGET_MINUTES,
    REVISIT_WINDOW,
    ChannelType,
    CyclePreference,
    DecisionKind,
    DecisionOutcome,
    EventSource,
    EventStatus,
    ImportStatus,
    LeadEventKind,
    LeadStatus,
    MappingPreset,
    PolicyStatus,
    PoolReason,
    RegistryStatus,
    ReplayStatus,
    ResponseTier,
    SalesModel,
    ScoreField,
    ScoreOperator,
    SlaThreshold,
    SourceGrade,
    TagColor,
    Verification,
    Zone,
)
from leads.models.intake import (
    Channel,
    ImportBatch,
    InboundEvent,
    InboundEventQuerySet,
    Tag,
    TaggingRule,
    new_channel_key,
    new_channel_secret,
)
from leads.models.lead import InvalidReason, Lead, LeadEvent, LeadQuerySet, open_load_q
from leads.models.reports import QualityDay, QualityRepDay, ReportChange, ReportDay
from leads.models.search import SearchGram
from leads.models.sla import SlaAlert, SlaPolicy

__all__ = [
    "REPLAY_WINDOW",
    "RESPONSE_TARGET_MINUTES",
    "REVISIT_WINDOW",
    "ActivityRun",
    "AssignmentDecision",
    "AssignmentPolicy",
    "BoardSettings",
    "Channel",
    "ChannelType",
    "ContactMethod",
    "CyclePreference",
    "DailySummary",
    "DecisionKind",
    "DecisionOutcome",
    "EventSource",
    "EventStatus",
    "ImportBatch",
    "ImportStatus",
    "InboundEvent",
    "InboundEventQuerySet",
    "Industry",
    "InvalidReason",
    "Lead",
    "LeadActivity",
    "LeadEvent",
    "LeadEventKind",
    "LeadQuerySet",
    "LeadStatus",
    "MappingPreset",
    "PolicyStatus",
    "PoolReason",
    "QualityDay",
    "QualityRepDay",
    "RegistryStatus",
    "RepActiveDay",
    "RepActivity",
    "RepLedgerDay",
    "RepProfile",
    "ReplayRun",
    "ReplayStatus",
    "ReportChange",
    "ReportDay",
    "ResponseTier",
    "SalesModel",
    "ScoreField",
    "ScoreOperator",
    "ScoreRule",
    "SearchGram",
    "SlaAlert",
    "SlaPolicy",
    "SlaThreshold",
    "SourceGrade",
    "Tag",
    "TagColor",
    "TaggingRule",
    "Verification",
    "Zone",
    "new_channel_key",
    "new_channel_secret",
    "open_load_q",
    "profile_of",
    "rep_available",
]
