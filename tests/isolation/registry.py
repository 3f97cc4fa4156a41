"""How to build each id-taking URL's arguments from one tenant's objects.

Every URL pattern that takes a parameter must appear here: in BUILDERS (the walker then
proves another tenant's id answers 404), in MODEL_OBJECTS (for the admin pages of a
tenant-owned model), or in EXEMPT with the reason it carries no tenant object. A new view
that is in none of them fails tests/isolation/test_urls.py until it is registered.

A builder takes (world, side) — side is "a" (the requester's own tenant) or "b" (the other
tenant) — and returns the URL kwargs for that side's object.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.contenttypes.models import ContentType

from crm.models import AuditEvent, Delivery, Export, ExportStatus, Membership, Notification, Outlet
from customers.models import Contact, Customer, Preset, StatusSuggestion
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    BoardSettings,
    Channel,
    ImportBatch,
    InboundEvent,
    InvalidReason,
    Lead,
    RepProfile,
    SlaPolicy,
    Tag,
    TaggingRule,
)
from opportunities.models import (
    AttachmentKind,
    ChainRole,
    ForecastMonth,
    LostReason,
    Opportunity,
    Stage,
    StageCalibration,
)
from service_feedback.models import (
    FlagKeyword,
    QualityAlert,
    ReviewHint,
    ServiceSettings,
    Ticket,
    TicketLink,
)
from tests.leads import factories as lf


def _once(w, s, name, build):
    """One object per side and name, built on first use in that side's tenant."""
    side = w.side(s)
    if name not in side.extra:
        side.extra[name] = build(side.tenant)
    return side.extra[name]


def _channel(w, s):
    return _once(w, s, "channel", lf.make_channel)


def _lead(w, s):
    return _once(w, s, "lead", lambda t: lf.make_lead(t, channel=_channel(w, s)))


def _import(w, s):
    def build(tenant):
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return ImportBatch.objects.create(
                tenant=tenant, channel=_channel(w, s), filename="leads.csv", rows=[]
            )

    return _once(w, s, "import", build)


def _notification(w, s):
    def build(tenant):
        from crm.notify import notify
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return notify(event="notify.channel_paused", recipients=[w.side(s).admin], params={})[0]

    return _once(w, s, "notification", build)


def _notification_channel(w, s):
    def build(tenant):
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Outlet.objects.create(
                tenant=tenant, kind="sms", name="SMS", url="http://127.0.0.1:9/sms"
            )

    return _once(w, s, "notification_channel", build)


def _delivery(w, s):
    def build(tenant):
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Delivery.objects.create(
                tenant=tenant,
                notification=_notification(w, s),
                channel=_notification_channel(w, s),
                to="13800138000",
            )

    return _once(w, s, "delivery", build)


def _export(w, s):
    def build(tenant):
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Export.objects.create(
                tenant=tenant,
                kind="leads",
                requested_by=w.side(s).admin,
                status=ExportStatus.DONE,
                file=f"exports/{tenant.pk}/isolation.csv",
                filename="leads.csv",
            )

    return _once(w, s, "export", build)


BUILDERS: dict[str, Callable] = {
    "export_download": lambda w, s: {"public_id": _export(w, s).public_id},
    "notification_open": lambda w, s: {"public_id": _notification(w, s).public_id},
    "tenant_switch": lambda w, s: {"slug": w.side(s).tenant.slug},
    "leads:detail": lambda w, s: {"public_id": _lead(w, s).public_id},
    "leads:reassign": lambda w, s: {"public_id": _lead(w, s).public_id},
    "leads:pool": lambda w, s: {"public_id": _lead(w, s).public_id},
    "leads:touch": lambda w, s: {"public_id": _lead(w, s).public_id},
    "leads:verify": lambda w, s: {"public_id": _lead(w, s).public_id},
    "leads:follow_up": lambda w, s: {"public_id": _lead(w, s).public_id},
    "customers:detail": lambda w, s: {"public_id": _customer(w, s).public_id},
    "customers:follow_up": lambda w, s: {"public_id": _customer(w, s).public_id},
    "customers:contact_left": lambda w, s: {
        "public_id": _customer(w, s).public_id,
        "contact_id": _contact(w, s).public_id,
    },
    "leads:import_batch": lambda w, s: {"public_id": _import(w, s).public_id},
    "admin:leads_assignmentpolicy_replay": lambda w, s: {
        "object_id": str(_draft(w, s).pk),
        "replay_id": _replay(w, s).public_id,
    },
    "admin:view_on_site": lambda w, s: {
        "content_type_id": ContentType.objects.get_for_model(AuditEvent).pk,
        "object_id": str(w.side(s).audit_event.pk),
    },
}

# Admin change/delete/history pages of tenant-scoped models: which object to open.
MODEL_OBJECTS: dict[type, Callable] = {
    Export: _export,
    AuditEvent: lambda w, s: w.side(s).audit_event,
    Membership: lambda w, s: w.side(s).rep,
    Channel: _channel,
    Lead: _lead,
    ImportBatch: _import,
    Tag: lambda w, s: _once(w, s, "tag", lf.make_tag),
    TaggingRule: lambda w, s: _once(w, s, "rule", lambda t: _rule(t, lf.make_tag(t))),
    InboundEvent: lambda w, s: _once(w, s, "event", lambda t: lf.make_event(t, _channel(w, s))),
    Notification: _notification,
    Outlet: _notification_channel,
    Delivery: _delivery,
    RepProfile: lambda w, s: _rep_profile(w, s),
    AssignmentPolicy: lambda w, s: _draft(w, s),
    SlaPolicy: lambda w, s: _sla_policy(w, s),
    AssignmentDecision: lambda w, s: _decision(w, s),
    Customer: lambda w, s: _customer(w, s),
    Contact: lambda w, s: _contact(w, s),
    Preset: lambda w, s: _in(w, s, "preset", lambda t: _first_preset()),
    StatusSuggestion: lambda w, s: _in(w, s, "suggestion", lambda t: _first_suggestion()),
    InvalidReason: lambda w, s: _in(w, s, "invalid_reason", lambda t: _first_reason()),
    BoardSettings: lambda w, s: _board_settings(w, s),
}


def _rule(tenant, tag):
    from crm.tenancy import tenant_context

    with tenant_context(tenant):
        return TaggingRule.objects.create(tenant=tenant, tag=tag, keywords="急需")


# Assignment admin (leads/assignment/admin*.py): the draft policy and its replay, a rep profile, the
# SLA policy, a decision.
def _in(w, s, name, build):
    def scoped(tenant):
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return build(tenant)

    return _once(w, s, name, scoped)


def _draft(w, s):
    from leads.assignment.policy import policy_draft

    return _in(w, s, "policy_draft", lambda t: policy_draft(tenant=t, acting_member=None))


def _replay(w, s):
    from leads.models import ReplayRun

    return _in(
        w, s, "replay", lambda t: ReplayRun.objects.create(tenant=t, policy=_draft(w, s), days=7)
    )


def _rep_profile(w, s):
    return _in(
        w,
        s,
        "rep_profile",
        lambda t: RepProfile.objects.get_or_create(membership=w.side(s).rep, tenant=t)[0],
    )


def _board_settings(w, s):
    return _in(w, s, "board_settings", lambda t: BoardSettings.objects.get_or_create(tenant=t)[0])


def _sla_policy(w, s):
    return _in(w, s, "sla_policy", lambda t: SlaPolicy.objects.get_or_create(tenant=t)[0])


def _decision(w, s):
    return _in(
        w,
        s,
        "decision",
        lambda t: AssignmentDecision.objects.create(
            tenant=t, lead=_lead(w, s), kind="auto", outcome="pooled"
        ),
    )


# Verification and follow-ups (customers/, leads/verification.py): a customer with a
# contact, and the pick lists created with their defaults.
def _customer(w, s):
    return _in(
        w,
        s,
        "customer",
        lambda t: Customer.objects.create(tenant=t, name=f"{t.slug} 客户", owner=w.side(s).rep),
    )


def _contact(w, s):
    return _in(
        w,
        s,
        "contact",
        lambda t: Contact.objects.create(tenant=t, customer=_customer(w, s), name="王工"),
    )


def _first_preset():
    from customers.models import PresetKind
    from customers.services import presets

    return presets(PresetKind.ACTION).first()


def _first_suggestion():
    from customers.services import status_suggestions

    return status_suggestions().first()


def _first_reason():
    from leads.verification import invalid_reasons

    return invalid_reasons().first()


EXEMPT: dict[str, str] = {
    "hook": "public webhook: the key names the tenant, the HMAC secret proves the sender",
    "lead_form": "public hosted form, found by the channel's unguessable key",
    "lead_form_qr": "public QR code of the hosted form, found by the channel's key",
    "admin:app_list": "an app label, not an object",
    "admin/(?P<url>.*)$": "the admin's catch-all: redirects or 404s, no object",
}

# Unnamed patterns that recur per model, matched on the route.
EXEMPT_ROUTES: list[tuple[str, str]] = [
    (r"^admin/\w+/\w+/<path:object_id>/$", "unnamed redirect to the change page, which is walked"),
]


# Opportunities (opportunities/): one opportunity of the side's rep with one of each piece
# of evidence, built through the services.
def _opportunity(w, s):
    from tests.opportunities.helpers import make_opportunity

    return _once(
        w, s, "opportunity", lambda t: make_opportunity(w.side(s), customer=_customer(w, s))
    )


def _opp_attachment(w, s):
    from tests.opportunities.helpers import attach

    return _once(
        w, s, "opp_attachment", lambda t: attach(w.side(s), _opportunity(w, s), "proposal")
    )


def _opp_question(w, s):
    from opportunities.services import question_mark

    def build(tenant):
        opportunity = _opportunity(w, s)
        return question_mark(
            tenant=tenant, acting_member=opportunity.owner, opportunity=opportunity, text="兼容性?"
        )

    return _in(w, s, "opp_question", build)


def _opp_member(w, s):
    from tests.opportunities.helpers import map_member

    return _once(w, s, "opp_member", lambda t: map_member(w.side(s), _opportunity(w, s), "CIO"))


def _opp_request(w, s):
    from opportunities.services import validity_request

    def build(tenant):
        opportunity = _opportunity(w, s)
        return validity_request(
            tenant=tenant, acting_member=opportunity.owner, opportunity=opportunity
        )

    return _in(w, s, "opp_request", build)


def _opp_first(model):
    def build(w, s):
        _opportunity(w, s)  # the tenant's pipeline defaults
        return _in(w, s, f"first_{model.__name__}", lambda t: model.objects.order_by("pk").first())

    return build


def _opp_calibration(w, s):
    from datetime import date

    from opportunities.models import StageCalibration

    def build(tenant):
        stage = _opp_first(Stage)(w, s)
        return StageCalibration.objects.create(
            tenant=tenant,
            stage=stage,
            cases=3,
            won=1,
            probability=10,
            calibrated=False,
            window_start=date(2026, 1, 1),
        )

    return _in(w, s, "opp_calibration", build)


def _opp_forecast(w, s):
    from datetime import date

    from opportunities.models import ForecastMonth

    return _in(
        w,
        s,
        "opp_forecast",
        lambda t: ForecastMonth.objects.create(tenant=t, month=date(2026, 1, 1), forecast=100),
    )


def _opp(name):
    return lambda w, s: {"public_id": _opportunity(w, s).public_id}


BUILDERS.update(
    {
        **{
            f"opportunities:{name}": _opp(name)
            for name in (
                "detail",
                "edit",
                "advance",
                "attach",
                "question",
                "chain_add",
                "validity_request",
                "win",
                "lose",
            )
        },
        "opportunities:attachment": lambda w, s: {
            "public_id": _opportunity(w, s).public_id,
            "attachment_id": _opp_attachment(w, s).public_id,
        },
        "opportunities:attachment_effective": lambda w, s: {
            "public_id": _opportunity(w, s).public_id,
            "attachment_id": _opp_attachment(w, s).public_id,
        },
        "opportunities:question_close": lambda w, s: {
            "public_id": _opportunity(w, s).public_id,
            "question_id": _opp_question(w, s).public_id,
        },
        "opportunities:chain_member": lambda w, s: {
            "public_id": _opportunity(w, s).public_id,
            "member_id": _opp_member(w, s).public_id,
        },
        "opportunities:chain_remove": lambda w, s: {
            "public_id": _opportunity(w, s).public_id,
            "member_id": _opp_member(w, s).public_id,
        },
        "opportunities:validity_decide": lambda w, s: {
            "public_id": _opportunity(w, s).public_id,
            "request_id": _opp_request(w, s).public_id,
        },
    }
)

MODEL_OBJECTS.update(
    {
        Opportunity: _opportunity,
        Stage: _opp_first(Stage),
        AttachmentKind: _opp_first(AttachmentKind),
        ChainRole: _opp_first(ChainRole),
        LostReason: _opp_first(LostReason),
        StageCalibration: _opp_calibration,
        ForecastMonth: _opp_forecast,
    }
)


# Service feedback (service_feedback/): the admin's models, one of each per side.
def _ticket(w, s):
    from tests.service_feedback.helpers import upsert

    return _once(
        w, s, "ticket", lambda t: upsert(w.side(s), f"{t.slug}-T1", phone="13900001111")[0]
    )


def _service_first(model, build=None):
    def get(w, s):
        _ticket(w, s)  # the tenant's settings and keyword lists, created on first use
        return _in(
            w,
            s,
            f"first_{model.__name__}",
            build or (lambda t: model.objects.order_by("pk").first()),
        )

    return get


MODEL_OBJECTS.update(
    {
        Ticket: _ticket,
        FlagKeyword: _service_first(FlagKeyword),
        ServiceSettings: _service_first(ServiceSettings),
        ReviewHint: _service_first(
            ReviewHint,
            lambda t: ReviewHint.objects.create(tenant=t, words=["V2.0", "兼容"], hint="白皮书"),
        ),
        QualityAlert: _service_first(
            QualityAlert,
            lambda t: QualityAlert.objects.create(tenant=t, product_model="X1", fault_code="E1"),
        ),
        TicketLink: lambda w, s: _in(
            w,
            s,
            "ticket_link",
            lambda t: TicketLink.objects.create(
                tenant=t, key="phone", value="+8613900002222", customer=_customer(w, s)
            ),
        ),
    }
)


# -- service feedback: effects (the review card's read receipt, the quality alerts) --------


def _sf_customer(w, s):
    def build(tenant):
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Customer.objects.create(tenant=tenant, name="售后客户", owner=w.side(s).rep)

    return _once(w, s, "sf_customer", build)


def _sf_alert(w, s):
    def build(tenant):
        from crm.tenancy import tenant_context
        from service_feedback.models import QualityAlert

        with tenant_context(tenant):
            return QualityAlert.objects.create(
                tenant=tenant, product_model="HX-200", fault_code="E17", province="江苏"
            )

    return _once(w, s, "sf_alert", build)


BUILDERS.update(
    {
        "service_feedback:ticket": lambda w, s: {"public_id": _ticket(w, s).public_id},
        "service_feedback:link": lambda w, s: {"public_id": _ticket(w, s).public_id},
        "service_feedback:review_read": lambda w, s: {"public_id": _sf_customer(w, s).public_id},
        "service_feedback:alert": lambda w, s: {"public_id": _sf_alert(w, s).public_id},
        "service_feedback:alert_close": lambda w, s: {"public_id": _sf_alert(w, s).public_id},
    }
)


# -- customer health: signals and tracked links (health/views_track.py, views_links.py) ----


def _health_link(w, s):
    from health.models import LinkKind, TrackedLink

    return _in(
        w,
        s,
        "health_link",
        lambda t: TrackedLink.objects.create(
            tenant=t,
            customer=_customer(w, s),
            kind=LinkKind.QUOTE,
            title="报价单",
            target_url="https://example.com/q.pdf",
        ),
    )


def _health_signal(w, s):
    from health.models import ResolvedBy, Signal, SignalKind

    return _in(
        w,
        s,
        "health_signal",
        lambda t: Signal.objects.create(
            tenant=t,
            customer=_customer(w, s),
            link=_health_link(w, s),
            kind=SignalKind.QUOTE_OPEN,
            resolved_by=ResolvedBy.TOKEN,
        ),
    )


def _health_models():
    from health.models import Signal, TrackedLink

    return {TrackedLink: _health_link, Signal: _health_signal}


MODEL_OBJECTS.update(_health_models())
BUILDERS.update(
    {"health_link_create": lambda w, s: {"public_id": _customer(w, s).public_id}},
)
EXEMPT.update(
    {
        "track": "public tracking endpoint: the key names the tenant, the HMAC secret proves it",
        "tracked_link": "public tracked link: the unguessable token names its tenant",
        "tracked_pixel": "public tracking pixel: the unguessable token names its tenant",
    }
)
# -- end of customer health: signals and tracked links -------------------------------------


# -- customer health: the risk list's retention task (health/views_risk.py) ------------------


def _risk_entry(w, s):
    def build(tenant):
        from datetime import date

        from crm.tenancy import tenant_context
        from health.models import RiskEntry

        side = w.side(s)
        with tenant_context(tenant):
            cust = Customer.objects.create(tenant=tenant, name="风险客户", owner=side.rep)
            return RiskEntry.objects.create(
                tenant=tenant,
                customer=cust,
                owner=side.rep,
                entered_on=date(2026, 11, 30),
                score=40,
                action="定制化技术方案",
            )

    return _once(w, s, "risk_entry", build)


BUILDERS.update(
    {"health:risk_done": lambda w, s: {"public_id": _risk_entry(w, s).public_id}},
)
# -- end customer health: the risk list -----------------------------------------------------


# -- customer health admin (health/admin.py): begin ---------------------------------------
# The tenant's settings (with its recompute and rotate-secret pages) and a playbook step.
from health.models import HealthSettings, PlaybookStep  # noqa: E402


def _health_settings(w, s):
    return _in(w, s, "health_settings", lambda t: HealthSettings.for_tenant(t))


def _playbook_step(w, s):
    return _in(
        w,
        s,
        "playbook_step",
        lambda t: PlaybookStep.objects.create(tenant=t, dimension="quotes", action="报价跟进"),
    )


MODEL_OBJECTS.update({HealthSettings: _health_settings, PlaybookStep: _playbook_step})
BUILDERS.update(
    {
        "admin:health_healthsettings_recompute": lambda w, s: {
            "object_id": str(_health_settings(w, s).pk)
        },
        "admin:health_healthsettings_rotate": lambda w, s: {
            "object_id": str(_health_settings(w, s).pk)
        },
    }
)
# -- customer health admin: end -----------------------------------------------------------


# -- The customer 360's lazy panels (customers/views_panels.py) ------------------------------
# The walker opens the timeline panel; tests/customers/test_customer360.py opens every
# panel key with another tenant's customer.
BUILDERS.update(
    {
        "customers:panel": lambda w, s: {
            "public_id": _customer(w, s).public_id,
            "key": "timeline",
        },
    }
)
# -- end of the customer 360's block ------------------------------------------------------------


# -- the drill-down list of a figure (crm/views_metric_rows.py) -----------------------------
EXEMPT.update(
    {
        "metric_rows": (
            "a metric's key names a registry entry, the same in every tenant; the rows are"
            " the requester's tenant's, and another tenant's rep id in the filter is 404"
            " (tests/crm/test_metric_rows.py)"
        ),
    }
)
# -- end of the drill-down list ----------------------------------------------------------------


# -- the nightly metric check (crm/metric_checks.py) and the weekly diagnoses (crm/process.py)
from crm.models import MetricCheck, WeeklyDiagnosis  # noqa: E402


def _metric_check(w, s):
    def build(tenant):
        from datetime import date

        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return MetricCheck.objects.create(
                tenant=tenant,
                day=date(2026, 3, 15),
                metric="leads.delivered",
                period="day",
                start=date(2026, 3, 15),
                figure=1,
                recount=1,
                ok=True,
            )

    return _once(w, s, "metric_check", build)


def _diagnosis(w, s):
    def build(tenant):
        from datetime import date

        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return WeeklyDiagnosis.objects.create(
                tenant=tenant,
                membership=w.side(s).rep,
                week=date(2026, 3, 9),
                start=date(2026, 3, 7),
                end=date(2026, 3, 13),
            )

    return _once(w, s, "weekly_diagnosis", build)


MODEL_OBJECTS.update({MetricCheck: _metric_check, WeeklyDiagnosis: _diagnosis})
BUILDERS.update({"process_diagnosis": lambda w, s: {"public_id": _diagnosis(w, s).public_id}})
# -- end of the metric check and the weekly diagnoses ----------------------------------------


# -- automation: rules, their run log, the tasks they put on boards (automation/) -------------


def _automation_rule(w, s):
    def build(tenant):
        from automation.models import Rule
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Rule.objects.create(
                tenant=tenant, name="同型号三次", trigger="ticket.opened", action="notify"
            )

    return _once(w, s, "automation_rule", build)


def _automation_run(w, s):
    def build(tenant):
        from automation.models import Run
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Run.objects.create(
                tenant=tenant,
                rule=_automation_rule(w, s),
                kind="ticket.opened",
                subject="customer:1",
                outcome="not_matched",
            )

    return _once(w, s, "automation_run", build)


def _automation_task(w, s):
    def build(tenant):
        from automation.models import Task
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Task.objects.create(
                tenant=tenant, assignee=w.side(s).admin, title="回访", subject="customer:1"
            )

    return _once(w, s, "automation_task", build)


def _automation_webhook_call(w, s):
    def build(tenant):
        from automation.models import WebhookCall
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return WebhookCall.objects.create(
                tenant=tenant,
                rule=_automation_rule(w, s),
                subject="customer:1",
                url="https://hooks.example.com/crm",
                body="{}",
            )

    return _once(w, s, "automation_webhook_call", build)


def _automation_miss(w, s):
    def build(tenant):
        from automation.models import Miss
        from crm.tenancy import tenant_context

        with tenant_context(tenant):
            return Miss.objects.create(
                tenant=tenant,
                kind="ticket.opened",
                key="customer:1",
                object="ticket:1",
                rules=[_automation_rule(w, s).pk],
                counts=[None],
            )

    return _once(w, s, "automation_miss", build)


def _automation_models():
    from automation.models import Miss, Rule, Run, WebhookCall

    return {
        Rule: _automation_rule,
        Run: _automation_run,
        Miss: _automation_miss,
        WebhookCall: _automation_webhook_call,
    }


MODEL_OBJECTS.update(_automation_models())
BUILDERS.update(
    {"automation:task_done": lambda w, s: {"public_id": _automation_task(w, s).public_id}}
)
# -- end of automation --------------------------------------------------------------------------
