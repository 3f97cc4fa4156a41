"""Customer 360 bench (F35): the customer page's first render and each of its lazy panels,
for a customer with 17 related record types populated, in a tenant of 100,000 customers.

    .venv/bin/python bench/customer360.py [--customers 100000] [--rows 40] [--requests 50]

The tenant (`bench-customers`, or --tenant) is filled by bench/customers.py's generator
(customers with a contact, follow-ups on 70%, a valid lead on 30%; idempotent). The
featured customer, `恒力液压 360`, is made once with, over the last two years (half of
each older than 12 months): contacts, follow-ups (5 × rows), leads, lead events
(4 a lead), inbound events, assignment decisions, opportunities, opportunity contacts,
attachments (metadata), technical questions, validity requests, opportunity events
(5 an opportunity), tickets (5 × rows), ticket links, review reads, quality alerts,
notifications and audit events about it, 91 days of health snapshots, tracked links
and signals. Then, as the tenant's manager: the first render (`/customers/<uuid>/`) and each
lazy panel (`/customers/<uuid>/panels/<key>/`, as htmx asks for it, and with `more=1`
and `months=all` for the row panels), `--requests` times each, alternating with the
reference workload (bench/common.py). Prints JSON. See bench/README.md and
docs/customers.md ("The customer 360").
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import statistics
import time
from datetime import timedelta
from pathlib import Path

from common import (
    Reference,
    emit,
    log,
    prepare_database,
    reference_sample,
    relative,
    setup_django,
    spread,
    vacuum_analyze,
)

NAME = "恒力液压 360"
PHONE = "+8613900000360"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
SESSION_TENANT_KEY = "crm_tenant_id"
PANELS = (
    "health",
    "opportunities",
    "service_review",
    "health_links",
    "leads",
    "interactions",
    "timeline",
)
ROW_PANELS = ("opportunities", "leads", "interactions")


def _customers_bench():
    """bench/customers.py (its module name would shadow the customers app)."""
    path = Path(__file__).with_name("customers.py")
    spec = importlib.util.spec_from_file_location("bench_customers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _at(now, i: int, n: int):
    """Row i of n spread evenly over the last two years, the newest first."""
    return now - timedelta(hours=1) - timedelta(days=730 * i / max(n, 1))


def featured(tenant, manager, reps, rows: int) -> tuple[object, dict]:
    """The customer with every related record type (made once), and how many of each."""
    from django.utils import timezone

    from crm.models import AuditEvent, Notification
    from crm.tenancy import tenant_context
    from customers.models import Contact, Customer, Interaction
    from leads.models import AssignmentDecision, InboundEvent, Lead, LeadEvent
    from opportunities.models import (
        Attachment,
        Opportunity,
        OpportunityContact,
        OpportunityEvent,
        TechnicalQuestion,
        ValidityRequest,
    )
    from service_feedback.models import QualityAlert, ReviewRead, Ticket, TicketLink

    owner = reps[1]
    now = timezone.now()
    with tenant_context(tenant):
        customer = Customer.objects.filter(name=NAME).first()
        if customer is None:
            log(f"featured customer: {rows} rows of each type")
            customer = Customer.objects.create(
                tenant=tenant, name=NAME, level="A", owner=owner, province="浙江省", city="宁波市"
            )
            _fill(tenant, customer, owner, manager, rows, now)
        _health(tenant, customer, owner, rows, now)
        from health.models import HealthSnapshot, Signal, TrackedLink

        counts = {
            "contacts": Contact.objects.filter(customer=customer).count(),
            "interactions": Interaction.objects.filter(customer=customer).count(),
            "leads": Lead.objects.filter(customer=customer).count(),
            "lead_events": LeadEvent.objects.filter(lead__customer=customer).count(),
            "inbound_events": InboundEvent.objects.filter(lead__customer=customer).count(),
            "assignment_decisions": AssignmentDecision.objects.filter(
                lead__customer=customer
            ).count(),
            "opportunities": Opportunity.objects.filter(customer=customer).count(),
            "opportunity_contacts": OpportunityContact.objects.filter(
                opportunity__customer=customer
            ).count(),
            "attachments": Attachment.objects.filter(opportunity__customer=customer).count(),
            "technical_questions": TechnicalQuestion.objects.filter(
                opportunity__customer=customer
            ).count(),
            "validity_requests": ValidityRequest.objects.filter(
                opportunity__customer=customer
            ).count(),
            "opportunity_events": OpportunityEvent.objects.filter(
                opportunity__customer=customer
            ).count(),
            "tickets": Ticket.objects.filter(customer=customer).count(),
            "ticket_links": TicketLink.objects.filter(customer=customer).count(),
            "review_reads": ReviewRead.objects.filter(customer=customer).count(),
            "quality_alerts": QualityAlert.objects.filter(tickets__customer=customer)
            .distinct()
            .count()
            if hasattr(QualityAlert, "tickets")
            else QualityAlert.objects.count(),
            "notifications": Notification.objects.filter(link__contains=str(customer.public_id))
            .distinct()
            .count(),
            "audit_events": AuditEvent.objects.filter(object_id=str(customer.pk)).count(),
            "health_snapshots": HealthSnapshot.objects.filter(customer=customer).count(),
            "signals": Signal.objects.filter(customer=customer).count(),
            "tracked_links": TrackedLink.objects.filter(customer=customer).count(),
        }
    return customer, counts


def _health(tenant, customer, owner, rows: int, now) -> None:
    """The customer's health (made once): 91 daily snapshots, `rows` tracked links and
    5 × `rows` signals over the last 180 days."""
    from health import compute
    from health.models import (
        HealthSnapshot,
        LinkKind,
        ResolvedBy,
        Signal,
        SignalKind,
        TrackedLink,
    )

    if HealthSnapshot.objects.filter(customer=customer).exists():
        return
    today = compute.local_today(tenant, now)
    weights = {"recency": 25, "frequency": 20, "service": 20, "downloads": 10, "quotes": 15,
               "competitor": 10}  # fmt: skip
    HealthSnapshot.objects.bulk_create(
        HealthSnapshot(
            tenant=tenant,
            customer=customer,
            day=today - timedelta(days=n),
            score=60 + n % 30,
            coverage=6,
            weights=weights,
            **{f"{d}_value": float(n % 10) for d in compute.DIMENSIONS},
            **{f"{d}_score": 40 + (n * 7) % 60 for d in compute.DIMENSIONS},
        )
        for n in range(91)
    )
    links = TrackedLink.objects.bulk_create(
        TrackedLink(
            tenant=tenant,
            customer=customer,
            kind=LinkKind.QUOTE if i % 2 else LinkKind.DOCUMENT,
            title=f"资料 {i}",
            target_url=f"https://files.example.com/{i}.pdf",
            created_by=owner,
            sent_at=_at(now, i, rows),
        )
        for i in range(rows)
    )
    kinds = list(SignalKind.values)
    Signal.objects.bulk_create(
        Signal(
            tenant=tenant,
            customer=customer,
            link=links[i % len(links)] if i % 3 == 0 else None,
            kind=kinds[i % len(kinds)],
            at=_at(now, i, 5 * rows),
            resolved_by=ResolvedBy.TOKEN if i % 3 == 0 else ResolvedBy.CODE,
        )
        for i in range(5 * rows)
    )


def _fill(tenant, customer, owner, manager, rows: int, now) -> None:
    """The featured customer's rows (in featured()'s tenant context)."""
    from crm import models as km
    from customers import models as cm
    from customers.services import presets
    from leads import models as lm
    from opportunities import models as om
    from opportunities.setup import ensure_defaults
    from service_feedback import models as sm

    ensure_defaults(tenant)
    action = presets(cm.PresetKind.ACTION).first()
    channel = lm.Channel.objects.filter(name="官网表单").first() or lm.Channel.objects.create(
        tenant=tenant, name="官网表单", type=lm.ChannelType.WEB_FORM
    )
    helpdesk = lm.Channel.objects.filter(name="智齿客服").first() or lm.Channel.objects.create(
        tenant=tenant, name="智齿客服", type="helpdesk"
    )
    contacts = cm.Contact.objects.bulk_create(
        cm.Contact(
            tenant=tenant,
            customer=customer,
            name=f"联系人{i:03d}",
            phone=PHONE if i == 0 else f"+861390036{i:04d}",
            phone_key=PHONE if i == 0 else f"+861390036{i:04d}",
            title="工程师",
            created_at=_at(now, i, rows),
        )
        for i in range(rows)
    )
    n = rows * 5
    cm.Interaction.objects.bulk_create(
        cm.Interaction(
            tenant=tenant,
            customer=customer,
            contact=contacts[i % rows],
            by=owner,
            at=_at(now, i, n),
            channel="phone",
            note=f"第{i}次跟进",
            next_action=action,
            next_action_due=_at(now, i, n).date() + timedelta(days=3),
            next_done_at=_at(now, i - 1, n) if i else None,
        )
        for i in range(n)
    )
    inbound = lm.InboundEvent.objects.bulk_create(
        lm.InboundEvent(
            tenant=tenant,
            channel=channel,
            source="webhook",
            raw_body="{}",
            body_sha256=hashlib.sha256(f"c360-{i}".encode()).hexdigest(),
            idempotency_key=f"c360-{i}",
        )
        for i in range(rows)
    )
    leads = lm.Lead.objects.bulk_create(
        lm.Lead(
            tenant=tenant,
            channel=channel,
            company=NAME,
            contact_name=f"联系人{i:03d}",
            phone=PHONE,
            phone_key=PHONE,
            status="valid",
            owner=owner,
            customer=customer,
            external_id=f"c360-lead-{i:04d}",
            created_at=_at(now, i, rows),
        )
        for i in range(rows)
    )
    for event, lead in zip(inbound, leads, strict=True):
        event.lead = lead
    lm.InboundEvent.objects.bulk_update(inbound, ["lead"])
    lm.LeadEvent.objects.bulk_create(
        lm.LeadEvent(
            tenant=tenant,
            lead=lead,
            kind=kind,
            at=_at(now, i, rows) + timedelta(minutes=k),
            actor=owner.user if k else None,
            message=f"{kind} {i}",
        )
        for i, lead in enumerate(leads)
        for k, kind in enumerate(("intake", "assigned", "touched", "verified"))
    )
    lm.AssignmentDecision.objects.bulk_create(
        lm.AssignmentDecision(
            tenant=tenant, lead=lead, kind="auto", outcome="assigned", reason="bench", rep=owner
        )
        if hasattr(lm.AssignmentDecision, "rep")
        else lm.AssignmentDecision(
            tenant=tenant, lead=lead, kind="auto", outcome="assigned", reason="bench"
        )
        for lead in leads
    )
    stages = list(om.Stage.objects.order_by("position"))
    opportunities = om.Opportunity.objects.bulk_create(
        om.Opportunity(
            tenant=tenant,
            name=f"{NAME} · 商机{i:03d}",
            customer=customer,
            owner=owner,
            product_line="液压机",
            stage=stages[i % len(stages)],
            probability=stages[i % len(stages)].default_probability,
            status="open" if i % 3 == 0 else ("won" if i % 3 == 1 else "lost"),
            amount=100_000 + 1_000 * i,
            is_valid=i % 2 == 0,
            created_at=_at(now, i, rows),
            last_activity_at=_at(now, i, rows),
            stage_entered_at=_at(now, i, rows),
        )
        for i in range(rows)
    )
    roles = list(om.ChainRole.objects.all())
    om.OpportunityContact.objects.bulk_create(
        om.OpportunityContact(
            tenant=tenant,
            opportunity=o,
            contact=contacts[(i + k) % rows],
            role=roles[(i + k) % len(roles)],
        )
        for i, o in enumerate(opportunities)
        for k in range(2)
    )
    kind = om.AttachmentKind.objects.first()
    om.Attachment.objects.bulk_create(
        om.Attachment(
            tenant=tenant,
            opportunity=o,
            kind=kind,
            file=f"bench/{o.pk}.pdf",
            name=f"方案{i}.pdf",
            file_type="pdf",
            size=120_000,
            sha256=hashlib.sha256(f"a{i}".encode()).hexdigest(),
            uploaded_by=owner,
        )
        for i, o in enumerate(opportunities)
    )
    om.TechnicalQuestion.objects.bulk_create(
        om.TechnicalQuestion(tenant=tenant, opportunity=o, text=f"兼容性问题{i}", opened_by=owner)
        for i, o in enumerate(opportunities)
    )
    om.ValidityRequest.objects.bulk_create(
        om.ValidityRequest(tenant=tenant, opportunity=o, requested_by=owner, note="请审批")
        for o in opportunities[::4]
    )
    om.OpportunityEvent.objects.bulk_create(
        om.OpportunityEvent(
            tenant=tenant,
            opportunity=o,
            kind=kind,
            actor=owner,
            at=_at(now, i, rows) + timedelta(minutes=k),
            to_stage=o.stage,
        )
        for i, o in enumerate(opportunities)
        for k, kind in enumerate(("created", "stage", "amount", "validity", "stage"))
    )
    n = rows * 5
    tickets = sm.Ticket.objects.bulk_create(
        sm.Ticket(
            tenant=tenant,
            channel=helpdesk,
            external_id=f"C360-{i:05d}",
            customer=customer,
            phone_key=PHONE,
            subject=f"设备报警 E{i % 30:02d}",
            text="升级到 V2.0 后和老产线不兼容" if i % 7 == 0 else "设备报警",
            product_model="HX-200",
            fault_code=f"E{i % 30:02d}",
            province="浙江省",
            city="宁波市",
            opened_at=_at(now, i, n),
            first_response_minutes=5 + i % 40,
            resolution_minutes=60 + 30 * (i % 50),
            satisfaction=1 + i % 5,
            sentiment=(i % 80) - 40,
        )
        for i in range(n)
    )
    sm.TicketLink.objects.bulk_create(
        sm.TicketLink(tenant=tenant, key="phone", value=f"+861390036{i:04d}", customer=customer)
        for i in range(1, rows)
    )
    sm.ReviewRead.objects.bulk_create(
        sm.ReviewRead(
            tenant=tenant,
            customer=customer,
            member=manager if i % 2 else owner,
            last_ticket=tickets[i],
        )
        for i in range(rows)
    )
    alerts = sm.QualityAlert.objects.bulk_create(
        sm.QualityAlert(
            tenant=tenant, product_model="HX-200", fault_code=f"E{i:02d}", province="浙江省"
        )
        for i in range(max(rows // 8, 1))
    )
    if hasattr(sm.Ticket, "alert"):
        for i, ticket in enumerate(tickets[: len(alerts) * 3]):
            ticket.alert = alerts[i % len(alerts)]
        sm.Ticket.objects.bulk_update(tickets[: len(alerts) * 3], ["alert"])
    link = f"/customers/{customer.public_id}/"
    km.Notification.objects.bulk_create(
        km.Notification(
            tenant=tenant,
            recipient=owner if i % 2 else manager,
            event="service.churn_risk",
            params={"customer": NAME, "subject": f"工单{i}", "words": "退货"},
            link=link,
        )
        for i in range(rows)
    )
    km.AuditEvent.objects.bulk_create(
        km.AuditEvent(
            tenant=tenant,
            actor=owner.user,
            action="interaction.logged",
            object_type="customers.customer",
            object_id=str(customer.pk),
            object_repr=NAME,
        )
        for _ in range(rows)
    )


def _timed(path: str, *, membership, n: int, warmup: int, params=None, htmx=False) -> dict:
    """`n` GETs of `path` (as htmx asks for a panel when `htmx`), each followed by one
    sample of the reference workload, as bench/common.measure does for pages."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(membership.user, backend=MODEL_BACKEND)
    session = client.session
    session[SESSION_TENANT_KEY] = membership.tenant_id
    session.save()
    headers = {"HX-Request": "true"} if htmx else {}

    def get():
        response = client.get(path, params, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params or ''} -> {response.status_code}")
        return response

    for _ in range(warmup):
        get()
    reference_sample()
    gc.collect()
    gc.freeze()
    timings, counts, sizes = [], [], []
    ref = Reference()
    for _ in range(n):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = get()
            timings.append((time.perf_counter() - start) * 1000)
        counts.append(len(ctx.captured_queries))
        sizes.append(len(response.content))
        ref.sample(1)
    result = {
        "path": path + (f"?{'&'.join(f'{k}={v}' for k, v in params.items())}" if params else ""),
        **spread(timings),
        "queries": counts[-1],
        "queries_constant": len(set(counts)) == 1,
        "bytes": int(statistics.median(sizes)),
        "reference": ref.report(),
    }
    result["relative"] = relative(result["median_ms"], result["reference"])
    return result


TABLES = (
    "customers_customer",
    "customers_contact",
    "customers_interaction",
    "leads_lead",
    "leads_leadevent",
    "opportunities_opportunity",
    "opportunities_opportunityevent",
    "service_feedback_ticket",
    "service_feedback_reviewread",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000, help="customers in the tenant")
    parser.add_argument("--tenant", default="bench-customers", help="tenant slug")
    parser.add_argument("--rows", type=int, default=40, help="rows of each related type")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per URL")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per URL")
    args = parser.parse_args()

    setup_django()
    prepare_database()
    from django.urls import reverse

    started = time.perf_counter()
    filled = _customers_bench().fill(args.customers, args.tenant)
    tenant, manager = filled["tenant"], filled["manager"]
    from crm.models import Membership
    from crm.tenancy import tenant_context

    with tenant_context(tenant):
        reps = list(
            Membership.objects.filter(tenant=tenant, role="rep")
            .select_related("user")
            .order_by("user__username")
        )
    customer, related = featured(tenant, manager, reps, args.rows)
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)
    log(f"related rows: {related}")

    urls = [("first_render", reverse("customers:detail", args=[customer.public_id]), None)]
    for key in PANELS:
        url = reverse("customers:panel", args=[customer.public_id, key])
        urls.append((f"panel_{key}", url, None))
        if key in ROW_PANELS:
            urls.append((f"panel_{key}_more", url, {"more": "1"}))
            urls.append((f"panel_{key}_all", url, {"months": "all", "more": "1"}))
        if key == "timeline":
            # A page past the end is the last one (Paginator.get_page).
            urls.append(("panel_timeline_all_last_page", url, {"months": "all", "page": "9999"}))
    pages = {}
    for label, url, params in urls:
        log(f"measuring {label}: {url} {params or ''}")
        pages[label] = _timed(
            url,
            membership=manager,
            n=args.requests,
            warmup=args.warmup,
            params=params,
            htmx=label != "first_render",
        )
    p95 = {label: page["p95_ms"] for label, page in pages.items()}
    emit(
        {
            "bench": "customer360",
            "tenant": args.tenant,
            "customers_requested": args.customers,
            "generation_seconds": round(loaded - started, 2),
            "related_rows": related,
            "related_types": sum(1 for v in related.values() if v),
            "targets": {"first_render_p95_ms": 80, "panel_p95_ms": 100},
            "met": {
                "first_render": p95["first_render"] < 80,
                "panels": all(v < 100 for k, v in p95.items() if k != "first_render"),
            },
            "p95_ms": p95,
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
