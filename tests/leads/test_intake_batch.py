"""The intake in batches: one task claims its event and the tenant's other queued events,
and every guarantee of the one-event path holds: one lead per event (also with two
workers racing on the same events), duplicates found across and within batches, the
assignment explained, the timeline, the notices, a bad event failing alone."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from crm.models import Notification
from crm.tenancy import tenant_context
from leads.intake.services import inbound_event_process, inbound_events_process
from leads.models import (
    AssignmentDecision,
    DecisionKind,
    DecisionOutcome,
    EventStatus,
    InboundEvent,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
)
from leads.tasks import process_inbound_event
from tests.leads.factories import make_channel, make_event, make_rep

pytestmark = pytest.mark.django_db


def phone(i: int) -> str:
    return f"139571{i:05d}"


def queue(tenant, channel, payloads) -> list[InboundEvent]:
    """Events stored as the webhook stores them, none processed yet."""
    return [make_event(tenant, channel, payload=p) for p in payloads]


def reps(world, n=3):
    """The tenant's reps: its world rep (default profile) and `n` more alike."""
    t = world.a.tenant
    return [world.a.rep, *(make_rep(t, username=f"{t.slug}-batch{i}") for i in range(n))]


def test_one_task_makes_the_leads_of_the_tenants_queued_events(world):
    t = world.a.tenant
    channel = make_channel(t)
    team = reps(world)
    events = queue(t, channel, [{"phone": phone(i), "message": f"#{i}"} for i in range(5)])
    other = queue(world.b.tenant, make_channel(world.b.tenant), [{"phone": phone(9)}])[0]

    with tenant_context(t):
        done = inbound_events_process(event_id=events[2].pk)
        # Its own event first, then the others oldest first; never another tenant's.
        assert [e.pk for e in done] == [events[2].pk, *(e.pk for e in events if e != events[2])]
        # The other events' own tasks find them taken and end at once.
        for event in events:
            assert inbound_events_process(event_id=event.pk) == []
        rows = list(InboundEvent.objects.order_by("pk").select_related("lead"))
        assert [r.status for r in rows] == [EventStatus.PROCESSED] * 5
        assert [r.attempts for r in rows] == [1] * 5
        assert len({r.lead_id for r in rows}) == 5
        assert [r.lead.phone for r in rows] == [f"+86{phone(i)}" for i in range(5)]
        for row in rows:
            lead = row.lead
            assert lead.status == LeadStatus.ASSIGNED and lead.owner_id in {m.pk for m in team}
            decision = AssignmentDecision.objects.get(lead=lead)
            # The explanation is stored: every rep's verdict and score.
            assert decision.outcome == DecisionOutcome.ASSIGNED
            assert {c["m"] for c in decision.candidates} == {m.pk for m in team}
            assert decision.score_breakdown
            kinds = list(LeadEvent.objects.filter(lead=lead).order_by("id").values_list("kind"))
            assert [k for (k,) in kinds] == [LeadEventKind.INTAKE, LeadEventKind.ASSIGNED]
            assert Notification.objects.filter(
                recipient_id=lead.owner_id, event="lead.assigned", link__contains=lead.public_id
            ).exists()
    with tenant_context(world.b.tenant):
        assert InboundEvent.objects.get(pk=other.pk).status == EventStatus.RECEIVED


def test_a_batch_shares_the_leads_out_as_one_by_one_dispatch_would(world):
    """Each decision of a batch sees the ones before it: open loads and the ledger."""
    t = world.a.tenant
    channel = make_channel(t)
    team = reps(world, 2)
    events = queue(t, channel, [{"phone": phone(i)} for i in range(6)])
    with tenant_context(t):
        inbound_events_process(event_id=events[0].pk)
        owners = list(Lead.objects.order_by("id").values_list("owner_id", flat=True))
        # Three equal reps: the fairness ledger gives each round of three to all three.
        assert set(owners[:3]) == set(owners[3:]) == {m.pk for m in team}


def test_a_duplicate_within_one_batch_is_a_revisit_for_the_first_owner(world):
    t = world.a.tenant
    channel = make_channel(t)
    reps(world)
    payloads = [
        {"phone": phone(1), "message": "first"},
        {"phone": phone(2)},
        {"phone": phone(1), "message": "again"},
        {"company": "宁波恒力液压科技有限公司", "contact_name": "王工", "phone": phone(3)},
        {"company": "宁波恒力液压科技有限公司", "contact_name": "王工", "email": "w@example.com"},
    ]
    events = queue(t, channel, payloads)
    with tenant_context(t):
        inbound_events_process(event_id=events[0].pk)
        leads = [Lead.objects.get(pk=e.lead_id) for e in InboundEvent.objects.order_by("pk")]
        assert leads[2].revisit_of_id == leads[0].pk
        assert leads[2].owner_id == leads[0].owner_id
        assert leads[4].revisit_of_id == leads[3].pk
        assert leads[4].owner_id == leads[3].owner_id
        assert [lead.revisit_of_id for lead in (leads[0], leads[1], leads[3])] == [None] * 3
        kinds = AssignmentDecision.objects.filter(lead__in=[leads[2], leads[4]])
        assert set(kinds.values_list("kind", flat=True)) == {DecisionKind.REVISIT}
        assert LeadEvent.objects.filter(lead=leads[2], kind=LeadEventKind.REVISIT).exists()


def test_an_event_without_a_contact_fails_alone_with_its_error_stored(world):
    t = world.a.tenant
    channel = make_channel(t)
    reps(world)
    payloads = [{"phone": phone(1)}, {"message": "nobody to call"}, {"phone": phone(3)}]
    events = queue(t, channel, payloads)
    with tenant_context(t):
        inbound_events_process(event_id=events[0].pk)
        rows = list(InboundEvent.objects.order_by("pk"))
        assert [r.status for r in rows] == [
            EventStatus.PROCESSED,
            EventStatus.FAILED,
            EventStatus.PROCESSED,
        ]
        assert rows[1].error_detail["code"] == "no_contact" and rows[1].error
        assert Lead.objects.count() == AssignmentDecision.objects.count() == 2


REFUSE = "refuse this lead"


@pytest.fixture
def refusing_database():
    """The database itself refuses to insert a lead whose message is REFUSE (a trigger,
    created by the owner), as it would refuse a row our validation let through."""
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_lead() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$;"
            " CREATE TRIGGER test_refuse_lead BEFORE INSERT ON leads_lead FOR EACH ROW"
            f" WHEN (NEW.message = '{REFUSE}') EXECUTE FUNCTION test_refuse_lead()"
        )
    yield
    with owner.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER test_refuse_lead ON leads_lead; DROP FUNCTION test_refuse_lead()"
        )


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_lead_the_database_refuses_fails_its_event_alone(world, refusing_database):
    t = world.a.tenant
    channel = make_channel(t)
    reps(world)
    payloads = [{"phone": phone(1)}, {"phone": phone(2), "message": REFUSE}, {"phone": phone(3)}]
    events = queue(t, channel, payloads)
    with tenant_context(t):
        inbound_events_process(event_id=events[0].pk)
    with tenant_context(t):
        rows = list(InboundEvent.objects.order_by("pk"))
        assert [r.status for r in rows] == [
            EventStatus.PROCESSED,
            EventStatus.FAILED,
            EventStatus.PROCESSED,
        ]
        assert "refused by the test trigger" in rows[1].error
        assert rows[1].error_detail["code"] == "internal"
        assert Lead.objects.count() == AssignmentDecision.objects.count() == 2
        assert LeadEvent.objects.filter(kind=LeadEventKind.ASSIGNED).count() == 2


def test_a_batch_costs_a_fixed_number_of_statements_plus_the_notices(world):
    """The query budget: policy, reps, inserts and updates once per batch; each lead adds
    only its notice (the in-app row and the recipient's preference look-up)."""
    t = world.a.tenant
    channel = make_channel(t)
    reps(world)
    with tenant_context(t):
        inbound_event_process(event_id=queue(t, channel, [{"phone": phone(0)}])[0].pk)

    def statements(n, start):
        events = queue(t, channel, [{"phone": phone(start + i)} for i in range(n)])
        with tenant_context(t), CaptureQueriesContext(connection) as ctx:
            assert len(inbound_events_process(event_id=events[0].pk)) == n
        return len(ctx.captured_queries)

    few, many = statements(2, 100), statements(12, 200)
    assert many - few == 2 * 10
    assert few <= 25


def test_a_task_whose_event_is_taken_ends_with_one_statement(world):
    t = world.a.tenant
    event = queue(t, make_channel(t), [{"phone": phone(1)}])[0]
    with tenant_context(t):
        inbound_event_process(event_id=event.pk)
        with CaptureQueriesContext(connection) as ctx:
            assert inbound_events_process(event_id=event.pk) == []
        assert len(ctx.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_the_same_events_make_one_lead_per_event(world):
    """Two workers, each with its own connection, run the tasks of the same 60 events
    (every message delivered to both, in opposite orders), with duplicates among them."""
    t = world.a.tenant
    channel = make_channel(t)
    reps(world)
    # 60 events, 20 phones: each phone three times, spread over the batches.
    events = queue(t, channel, [{"phone": phone(i % 20), "message": f"#{i}"} for i in range(60)])
    ids = [e.pk for e in events]
    start = threading.Barrier(2)
    errors, done = [], {}

    def worker(name, order):
        try:
            start.wait(timeout=10)
            taken = 0
            for event_id in order:
                # The task as Celery runs it: TenantTask, one transaction per message.
                taken += process_inbound_event(t.pk, event_id)
            done[name] = taken
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=("one", ids)),
        threading.Thread(target=worker, args=("two", ids[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert done["one"] + done["two"] == 60  # every event claimed exactly once
    with tenant_context(t):
        rows = list(InboundEvent.objects.order_by("pk"))
        assert {r.status for r in rows} == {EventStatus.PROCESSED}
        assert {r.attempts for r in rows} == {1}
        assert len({r.lead_id for r in rows}) == 60
        assert Lead.objects.count() == 60
        assert AssignmentDecision.objects.count() == 60
        assert LeadEvent.objects.filter(kind=LeadEventKind.INTAKE).count() == 60
        # One original per phone, its two revisits pointing at it and owned by its owner.
        originals = list(Lead.objects.originals())
        assert len(originals) == 20
        for original in originals:
            revisits = list(Lead.objects.filter(revisit_of=original))
            assert len(revisits) == 2
            assert {r.owner_id for r in revisits} == {original.owner_id}
