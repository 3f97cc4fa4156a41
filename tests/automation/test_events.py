"""The outbox (crm.events): written in the change's transaction, typed by its kind, drained
once by the consumers; and each app's service emitting its events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from crm import events
from crm.models import OutboxEvent
from crm.tenancy import tenant_context
from customers.models import Customer
from tests.conftest import platform_db

pytestmark = pytest.mark.django_db


def rows(side, kind=None):
    with tenant_context(side.tenant):
        qs = OutboxEvent.objects.order_by("id")
        if kind:
            qs = qs.filter(kind=kind)
        return list(qs)


def a_customer(side, name="恒力液压"):
    with tenant_context(side.tenant):
        return Customer.objects.create(tenant=side.tenant, name=name, owner=side.rep)


@pytest.fixture
def seen():
    """A consumer that keeps what it is handed (registered for the test only)."""
    got: list[OutboxEvent] = []

    def consumer(batch):
        got.extend(batch)

    events.register_consumer(consumer)
    yield got
    events._consumers.remove(consumer)


def test_an_event_rolls_back_with_its_change(world):
    cust = a_customer(world.a)
    with tenant_context(world.a.tenant):
        try:
            with transaction.atomic():
                events.emit("customer.level_changed", cust, level="A", previous_level="C")
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert rows(world.a) == []


def test_an_unknown_kind_or_field_or_type_is_refused(world):
    cust = a_customer(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValueError, match="unknown event kind"):
            events.emit("customer.nothing", cust)
        with pytest.raises(ValueError, match="no fields"):
            events.emit("customer.level_changed", cust, colour="red")
        with pytest.raises(TypeError):
            events.emit("customer.level_changed", cust, owner_id="seven")
    assert rows(world.a) == []


def test_the_drain_hands_each_event_once_and_marks_it_processed(world, seen):
    cust = a_customer(world.a)
    other = a_customer(world.b)
    with tenant_context(world.a.tenant):
        first = events.emit("customer.level_changed", cust, level="A", previous_level="C")
    with tenant_context(world.b.tenant):
        events.emit("customer.level_changed", other, level="B", previous_level="C")
    with tenant_context(world.a.tenant):
        assert events.process_pending() == 1
        assert events.process_pending() == 0
    assert [e.pk for e in seen] == [first.pk]
    assert seen[0].key == f"customer:{cust.pk}"
    assert seen[0].data == {"level": "A", "previous_level": "C", "owner_id": None}
    [row] = rows(world.a)
    assert row.processed_at is not None
    assert rows(world.b)[0].processed_at is None  # the other tenant's stays in its outbox


def test_a_consumer_that_fails_leaves_the_batch_in_the_outbox(world):
    cust = a_customer(world.a)

    def broken(batch):
        raise RuntimeError("consumer bug")

    events.register_consumer(broken)
    try:
        with tenant_context(world.a.tenant):
            events.emit("customer.level_changed", cust, level="A", previous_level="C")
            with pytest.raises(RuntimeError):
                events.process_pending()
    finally:
        events._consumers.remove(broken)
    assert rows(world.a)[0].processed_at is None


@platform_db
def test_the_redrive_finds_tenants_with_events_left_behind(world):
    cust = a_customer(world.a)
    fresh = a_customer(world.b)
    with tenant_context(world.a.tenant):
        events.emit(
            "customer.level_changed",
            cust,
            level="A",
            previous_level="C",
            at=timezone.now() - timedelta(minutes=1),
        )
    with tenant_context(world.b.tenant):
        events.emit("customer.level_changed", fresh, level="A", previous_level="C")
    assert events.stale_tenants() == [world.a.tenant.pk]


# -- each app's service emits its events ------------------------------------------------------


def test_a_logged_follow_up_is_an_event_keyed_by_its_customer(world):
    from tests.opportunities.helpers import log_follow_up, make_opportunity

    opp = make_opportunity(world.a)
    log_follow_up(world.a, opp, talk_tags=["技术疑虑"])
    [row] = rows(world.a, "followup.logged")
    assert row.key == f"customer:{opp.customer_id}"
    assert row.data["talk_tags"] == "技术疑虑" and row.data["by_id"] == world.a.rep.pk


def test_an_opportunity_moved_lost_are_events(world):
    from opportunities import services
    from opportunities.models import LostReason
    from tests.opportunities.helpers import make_opportunity, stage

    opp = make_opportunity(world.a, amount=120000)
    first = opp.stage.code
    with tenant_context(world.a.tenant):
        services.opportunity_advance(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            opportunity=opp,
            stage=stage(world.a, first),  # same stage: no change, no event
        )
    assert rows(world.a, "opportunity.stage_changed") == []
    with tenant_context(world.a.tenant):
        reason = LostReason.objects.filter(is_active=True, needs_detail=False).first()
        services.opportunity_lose(
            tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp, reason=reason
        )
    [lost] = rows(world.a, "opportunity.lost")
    assert lost.key == f"customer:{opp.customer_id}"
    assert lost.data["amount"] == 120000.0 and lost.data["lost_reason"] == reason.name


def test_tickets_received_flagged_and_closed_are_events(world):
    from tests.service_feedback.helpers import customer_with_contact, upsert

    cust = customer_with_contact(world.a)
    upsert(world.a, "T-1", phone="13800138000", product_model="DN50", status="open")
    upsert(world.a, "T-1", phone="13800138000", product_model="DN50", status="open")
    upsert(
        world.a,
        "T-1",
        phone="13800138000",
        product_model="DN50",
        status="closed",
        text="我们要增购一批",
    )
    kinds = [r.kind for r in rows(world.a)]
    assert kinds == ["ticket.opened", "ticket.closed", "ticket.flagged"]
    assert {r.key for r in rows(world.a)} == {f"customer:{cust.pk}"}
    assert rows(world.a, "ticket.flagged")[0].data["new_flags"] == "upsell"


def test_intake_and_a_reassignment_and_a_verdict_are_lead_events(world):
    from leads.assignment.dispatch import lead_reassign
    from tests.leads.assignment_view_helpers import intake
    from tests.leads.test_dispatch import add_reps

    tenant = world.a.tenant
    add_reps(tenant, 2)
    lead = intake(tenant)
    created = rows(world.a, "lead.created")
    assert [r.object_id for r in created] == [lead.pk]
    assert created[0].key == f"lead:{lead.pk}"
    assert [r.data["owner_id"] for r in rows(world.a, "lead.assigned")] == [lead.owner_id]
    target = world.a.rep
    with tenant_context(tenant):
        lead_reassign(
            tenant=tenant, acting_member=world.a.manager, lead=lead, to=target, reason="x"
        )
    assert rows(world.a, "lead.assigned")[-1].data["owner_id"] == target.pk


def test_the_sla_sweeps_retry_and_a_return_to_the_pool_are_lead_assigned_events(world):
    """The later dispatches: the sweep's retry of a lead that waited for a rep, and the
    new owner of a lead returned to the pool (no second touch); a wait or a pool is none."""
    from leads.assignment import sla
    from leads.assignment.dispatch import lead_return_to_pool
    from leads.assignment.policy import policy_active
    from leads.models import AssignmentPolicy, PoolReason, RepProfile
    from tests.leads.test_dispatch import add_reps, intake

    tenant = world.a.tenant
    with tenant_context(tenant):
        policy = policy_active()
        AssignmentPolicy.objects.filter(pk=policy.pk).update(require_region=True)
        RepProfile.objects.create(tenant=tenant, membership=world.a.rep, provinces=["北京市"])
    waiting = intake(tenant, province="广东省", city="深圳市")
    assert waiting.owner_id is None and waiting.dispatch_after is not None
    assert rows(world.a, "lead.assigned") == []
    with tenant_context(tenant):
        sla.sla_sweep(waiting.dispatch_after)
        waiting.refresh_from_db()
    assert waiting.owner_id == world.a.rep.pk
    [retried] = rows(world.a, "lead.assigned")
    assert (retried.object_id, retried.data["owner_id"]) == (waiting.pk, world.a.rep.pk)
    assert retried.key == f"lead:{waiting.pk}" and retried.data["status"] == "assigned"

    add_reps(tenant, 1, provinces=["广东省"])
    with tenant_context(tenant):
        lead_return_to_pool(
            tenant=tenant, acting_member=None, lead=waiting, reason=PoolReason.NO_SECOND_TOUCH
        )
        waiting.refresh_from_db()
    assert waiting.owner_id not in (None, world.a.rep.pk)
    returned = rows(world.a, "lead.assigned")
    assert [r.data["owner_id"] for r in returned] == [world.a.rep.pk, waiting.owner_id]


def test_a_verdict_is_a_lead_event(world):
    from leads.verification import invalid_reasons, lead_verify
    from tests.leads.factories import make_assigned_lead

    lead = make_assigned_lead(world.a.tenant, world.a.rep, timezone.now() - timedelta(hours=2))
    with tenant_context(world.a.tenant):
        lead_verify(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            lead=lead,
            outcome="invalid_contact",
            invalid_reason=invalid_reasons().first(),
        )
    [row] = rows(world.a, "lead.verified")
    assert row.data["verification"] == "invalid_contact"


def test_a_customer_entering_the_risk_list_is_an_event(world):
    from health import compute
    from health.models import RiskEntry
    from tests.health.test_risk import quiet, run

    cust = quiet(world.a)
    run(world.a)  # a past day scored: its new stay is not an event (no flood on re-scoring)
    assert rows(world.a, "health.risk_entered") == []
    with tenant_context(world.a.tenant):
        RiskEntry.objects.filter(customer=cust).delete()
    run(world.a, day=compute.local_today(world.a.tenant))
    with tenant_context(world.a.tenant):
        entry = RiskEntry.objects.get(customer=cust)
    [row] = rows(world.a, "health.risk_entered")
    assert row.object_id == entry.pk and row.key == f"customer:{cust.pk}"
    assert row.data["score"] == entry.score


def test_recorded_signals_are_events(world):
    from health.models import HealthSettings
    from health.signals import parse_events, signals_record
    from tests.service_feedback.helpers import customer_with_contact

    cust = customer_with_contact(world.a, code="C-9")
    now = timezone.now()
    with tenant_context(world.a.tenant):
        settings = HealthSettings.for_tenant(world.a.tenant)
        parsed, refused = parse_events(
            {"events": [{"type": "search", "customer_code": "C-9", "query": "DN50 球阀"}]},
            now=now,
            tz=world.a.tenant.tzinfo,
        )
        assert refused == []
        signals_record(tenant=world.a.tenant, settings=settings, events=parsed, now=now)
    [row] = rows(world.a, "health.signal")
    assert row.key == f"customer:{cust.pk}" and row.data["query"] == "DN50 球阀"
