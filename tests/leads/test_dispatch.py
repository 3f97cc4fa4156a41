"""The database path of assignment: intake → decision → lead, ledger, timeline, notice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Notification, Role
from crm.tenancy import tenant_context
from leads.assignment.dispatch import (
    dispatch_due,
    dispatch_new_lead,
    lead_reassign,
    lead_return_to_pool,
)
from leads.assignment.policy import policy_active, policy_draft, policy_publish
from leads.assignment.reps import open_loads
from leads.intake.services import inbound_event_process
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    DecisionKind,
    DecisionOutcome,
    EventStatus,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    PolicyStatus,
    PoolReason,
    RepLedgerDay,
    RepProfile,
    ScoreRule,
)
from tests.conftest import platform_db
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_event, make_lead

pytestmark = pytest.mark.django_db


def add_reps(tenant, n, **profile):
    reps = [
        MembershipFactory(tenant=tenant, role=Role.REP, user__username=f"{tenant.slug}-r{i}")
        for i in range(n)
    ]
    with tenant_context(tenant):
        for m in reps:
            RepProfile.objects.create(tenant=tenant, membership=m, **profile)
    return reps


def intake(tenant, channel=None, **payload):
    payload.setdefault("phone", "13812345679")
    payload.setdefault("company", "宁波恒力液压科技有限公司")
    payload.setdefault("name", "王工")
    event = make_event(tenant, channel, payload=payload)
    with tenant_context(tenant):
        inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert event.status == EventStatus.PROCESSED, event.error
        return Lead.objects.select_related("owner").get(pk=event.lead_id)


def test_a_new_lead_is_assigned_in_the_intake_task_with_its_decision(world):
    t = world.a.tenant
    lead = intake(t, make_channel(t, name="展会名片"))
    with tenant_context(t):
        assert lead.owner == world.a.rep and lead.status == LeadStatus.ASSIGNED
        assert lead.assigned_at is not None and lead.dispatch_round == 1
        assert lead.score == 50
        decision = AssignmentDecision.objects.get(lead=lead)
        assert decision.kind == DecisionKind.AUTO and decision.outcome == DecisionOutcome.ASSIGNED
        assert decision.chosen == world.a.rep
        assert decision.policy.version == 1 and decision.policy.status == PolicyStatus.PUBLISHED
        assert [c["m"] for c in decision.candidates] == [world.a.rep.pk]
        assert decision.seed is not None
        kinds = set(LeadEvent.objects.filter(lead=lead).values_list("kind", flat=True))
        assert LeadEventKind.ASSIGNED in kinds
        note = Notification.objects.get(recipient=world.a.rep, event="lead.assigned")
        assert note.link == f"/leads/{lead.public_id}/"
        ledger = RepLedgerDay.objects.get(membership=world.a.rep)
        assert ledger.received == 1 and ledger.expected == pytest.approx(1.0)
    # Tenant b's reps are never candidates, and b has no rows from a's decision.
    with tenant_context(world.b.tenant):
        assert not AssignmentDecision.objects.exists()
        assert not RepLedgerDay.objects.exists()


def test_default_policy_rules_score_the_lead(world):
    t = world.a.tenant
    channel = make_channel(t, name="官网表单", default_grade="A")
    lead = intake(t, channel, message="请立即报价", budget="80万")
    # 50 base + 30 website + 25 budget > 500k + 20 立即报价 + 10 A-class
    assert lead.score == 135
    with tenant_context(t):
        hits = AssignmentDecision.objects.get(lead=lead).score_breakdown
    assert sorted(h["points"] for h in hits) == [10, 20, 25, 30]


def test_ledger_shares_one_lead_among_the_eligible(world):
    t = world.a.tenant
    add_reps(t, 3)
    lead = intake(t)
    with tenant_context(t):
        rows = list(RepLedgerDay.objects.values_list("membership_id", "expected", "received"))
    assert len(rows) == 4
    assert sum(e for _m, e, _r in rows) == pytest.approx(1.0)
    assert sum(r for _m, _e, r in rows) == 1
    assert dict((m, r) for m, _e, r in rows)[lead.owner_id] == 1


def test_capacity_counts_open_unverified_leads_from_the_database(world):
    t = world.a.tenant
    other = add_reps(t, 1)[0]
    channel = make_channel(t)
    with tenant_context(t):
        RepProfile.objects.update_or_create(
            membership=world.a.rep, defaults={"tenant": t, "capacity": 2}
        )
    for i in range(2):
        make_lead(
            t, channel, owner=world.a.rep, status=LeadStatus.ASSIGNED, phone=f"+86139000000{i}"
        )
    make_lead(t, channel, owner=world.a.rep, status=LeadStatus.VALID, phone="+8613900000099")
    lead = intake(t, channel)
    assert lead.owner == other
    with tenant_context(t):
        verdicts = {c["m"]: c for c in AssignmentDecision.objects.get(lead=lead).candidates}
    assert verdicts[world.a.rep.pk]["v"] == "at_capacity"
    assert (verdicts[world.a.rep.pk]["open"], verdicts[world.a.rep.pk]["cap"]) == (2, 2)


def test_revisit_goes_to_the_first_owner_and_is_not_counted(world):
    t = world.a.tenant
    add_reps(t, 2)
    # A real number: a placeholder one (13812345678) would match nobody.
    first = intake(t, phone="13812345679")
    again = intake(t, phone="13812345679", message="第二次咨询")
    assert again.revisit_of_id == first.pk
    assert again.owner_id == first.owner_id
    with tenant_context(t):
        decision = AssignmentDecision.objects.get(lead=again)
        assert decision.kind == DecisionKind.REVISIT
        assert RepLedgerDay.objects.filter(membership_id=first.owner_id).get().received == 1
        assert Notification.objects.filter(event="lead.revisit").count() == 1


def test_revisit_of_a_departed_owner_is_dispatched(world):
    t = world.a.tenant
    newcomer = add_reps(t, 1)[0]
    first = intake(t, phone="13812345679")
    departed = first.owner
    departed.is_active = False
    with tenant_context(t):
        departed.save()
    again = intake(t, phone="13812345679", message="第二次咨询")
    assert again.revisit_of_id == first.pk
    assert again.owner == (world.a.rep if departed == newcomer else newcomer)
    with tenant_context(t):
        assert AssignmentDecision.objects.get(lead=again).kind == DecisionKind.AUTO


def test_nobody_eligible_waits_then_drops_criteria_then_assigns(world):
    t = world.a.tenant
    with tenant_context(t):
        policy = policy_active()
        AssignmentPolicy.objects.filter(pk=policy.pk).update(require_region=True)
        RepProfile.objects.create(tenant=t, membership=world.a.rep, provinces=["北京市"])
    lead = intake(t, province="广东省", city="深圳市")
    assert lead.owner is None and lead.status == LeadStatus.NEW
    assert lead.dispatch_after is not None
    with tenant_context(t):
        waiting = AssignmentDecision.objects.get(lead=lead)
        assert waiting.outcome == DecisionOutcome.WAITING
        assert waiting.candidates[0]["v"] == "region"
        # Before the wait is over nothing happens.
        assert dispatch_due(now=lead.dispatch_after - timedelta(seconds=1)) == 0
        assert dispatch_due(now=lead.dispatch_after) == 1
        lead.refresh_from_db()
        assert lead.owner == world.a.rep and lead.dispatch_after is None
        retry = AssignmentDecision.objects.filter(lead=lead).latest("decided_at")
        assert retry.kind == DecisionKind.RETRY and retry.relaxed == ["region"]


def test_still_nobody_after_the_wait_pools_the_lead_and_tells_the_managers(world):
    t = world.a.tenant
    with tenant_context(t):
        RepProfile.objects.create(tenant=t, membership=world.a.rep, is_available=False)
    lead = intake(t)
    with tenant_context(t):
        assert dispatch_due(now=lead.dispatch_after + timedelta(seconds=1)) == 1
        lead.refresh_from_db()
        assert lead.owner is None and lead.pooled_at is not None
        assert lead.pool_reason == PoolReason.NO_CANDIDATE
        assert lead.dispatch_after is None
        pooled = AssignmentDecision.objects.filter(lead=lead).latest("decided_at")
        assert pooled.outcome == DecisionOutcome.POOLED
        assert pooled.relaxed == ["region", "industry"]
        told = set(
            Notification.objects.filter(event="lead.pooled").values_list("recipient", flat=True)
        )
        assert world.a.manager.pk in told
        assert world.a.rep.pk not in told
        # Nothing left to retry.
        assert dispatch_due(now=timezone.now() + timedelta(days=1)) == 0


def test_a_failing_assignment_keeps_the_lead_in_the_pool_with_the_reason(world):
    t = world.a.tenant
    with tenant_context(t):
        # Bad data typed into the database by hand: industries must be a list.
        RepProfile.objects.create(tenant=t, membership=world.a.rep, industries=5)
    lead = intake(t)
    assert lead.owner is None and lead.status == LeadStatus.NEW
    assert lead.pool_reason == PoolReason.FAILED and lead.pooled_at is not None
    with tenant_context(t):
        assert LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.POOLED).exists()


def test_publishing_a_draft_makes_the_next_version_decide(world):
    t = world.a.tenant
    channel = make_channel(t, name="展会名片")
    intake(t, channel)
    with tenant_context(t):
        draft = policy_draft(tenant=t, acting_member=world.a.admin)
        assert (
            draft.version is None
            and draft.rules.count() == ScoreRule.objects.filter(policy__version=1).count()
        )
        draft.base_score = 60
        draft.save()
        v2 = policy_publish(tenant=t, acting_member=world.a.admin, draft=draft, note="更重视来源")
        assert v2.version == 2 and v2.base_score == 60
        # The draft stays for further edits; version 1 is untouched.
        assert AssignmentPolicy.objects.get(version=1).base_score == 50
        assert AssignmentPolicy.objects.filter(status=PolicyStatus.DRAFT).count() == 1
    lead = intake(t, channel, phone="13900001111", company="另一家公司", name="李工")
    with tenant_context(t):
        decision = AssignmentDecision.objects.get(lead=lead)
        assert decision.policy == v2 and decision.lead_score == 60


def test_return_to_pool_dispatches_to_someone_else(world):
    t = world.a.tenant
    add_reps(t, 1)
    lead = intake(t)
    first_owner = lead.owner
    with tenant_context(t):
        decision = lead_return_to_pool(
            tenant=t, acting_member=None, lead=lead, reason=PoolReason.NO_SECOND_TOUCH
        )
        lead.refresh_from_db()
        assert decision.kind == DecisionKind.RETURN and decision.previous_owner == first_owner
        assert lead.owner is not None and lead.owner != first_owner
        assert lead.dispatch_round == 2
        excluded = {c["m"]: c["v"] for c in decision.candidates}[first_owner.pk]
        assert excluded == "excluded"
        assert Notification.objects.filter(event="lead.returned", recipient=first_owner).exists()


def test_manual_reassign_is_audited_and_counted(world):
    t = world.a.tenant
    other = add_reps(t, 1)[0]
    lead = intake(t)
    target = other if lead.owner != other else world.a.rep
    with tenant_context(t):
        lead_reassign(
            tenant=t, acting_member=world.a.manager, lead=lead, to=target, reason="客户指定"
        )
        lead.refresh_from_db()
        assert lead.owner == target
        decision = AssignmentDecision.objects.filter(lead=lead).latest("decided_at")
        assert decision.kind == DecisionKind.MANUAL and decision.reason == "客户指定"
        assert decision.actor == world.a.manager.user
        from crm.models import AuditEvent

        assert AuditEvent.objects.filter(
            action="lead.reassigned", object_id=str(lead.public_id)
        ).exists()
        assert RepLedgerDay.objects.get(membership=target).received == 1
        with pytest.raises(ValueError):
            lead_reassign(tenant=t, acting_member=None, lead=lead, to=world.a.manager, reason="x")


def test_dispatch_queries_do_not_grow_with_the_number_of_reps(world):
    t = world.a.tenant
    channel = make_channel(t)

    def queries_for_one(n_reps, phone):
        add_reps(t, n_reps)
        lead = make_lead(t, channel, phone=phone)
        with tenant_context(t), CaptureQueriesContext(connection) as ctx:
            dispatch_new_lead(lead)
        return len(ctx.captured_queries)

    assignment_queries = queries_for_one(0, "+8613900000001")  # creates version 1 too
    few = queries_for_one(3, "+8613900000002")
    world.a.tenant.slug = "alpha"  # (usernames must stay unique per call)
    many = [
        MembershipFactory(tenant=t, role=Role.REP, user__username=f"bulk{i}") for i in range(30)
    ]
    with tenant_context(t):
        RepProfile.objects.bulk_create(RepProfile(tenant=t, membership=m) for m in many)
    lead = make_lead(t, channel, phone="+8613900000003")
    with tenant_context(t), CaptureQueriesContext(connection) as ctx:
        dispatch_new_lead(lead)
    assert len(ctx.captured_queries) == few
    assert assignment_queries >= few


@platform_db
def test_policies_are_read_inside_one_tenant_only(world):
    from crm.tenancy import NoTenantError, all_tenants_context

    with tenant_context(world.a.tenant):
        policy_active()
    with all_tenants_context(), pytest.raises(NoTenantError):
        policy_active()


# -- a verified lead changes hands: its verdict and history stay ---------------------------------


def _verified(tenant, lead, rep, *, now=None):
    """`lead` verified valid by `rep` through the service, the next step due today."""
    from customers.models import PresetKind
    from customers.services import presets
    from leads.verification import lead_verify

    now = now or timezone.now()
    with tenant_context(tenant):
        lead = Lead.objects.select_related("tenant", "owner").get(pk=lead.pk)
        return lead_verify(
            tenant=lead.tenant,
            acting_member=rep,
            lead=lead,
            outcome="valid_more_info",
            next_action=presets(PresetKind.ACTION).get(name="发送方案"),
            next_action_due=timezone.localdate(now, tenant.tzinfo),
            now=now,
        )


def test_a_verified_lead_returned_to_the_pool_keeps_its_verdict_and_history(world, login):
    from leads.board import ranking as board

    t = world.a.tenant
    add_reps(t, 1)
    lead = intake(t)
    first_owner = lead.owner
    verified = _verified(t, lead, first_owner, now=timezone.now() - timedelta(hours=1))
    with tenant_context(t):
        Notification.objects.all().delete()
        lead = Lead.objects.select_related("owner", "channel", "tenant").get(pk=lead.pk)
        decision = lead_return_to_pool(
            tenant=t, acting_member=None, lead=lead, reason=PoolReason.NO_SECOND_TOUCH
        )
        lead = Lead.objects.get(pk=lead.pk)
        new_owner = lead.owner
        assert decision.outcome == DecisionOutcome.ASSIGNED and new_owner != first_owner
        # Still the verified lead it was: verdict, verifier, customer, touches.
        assert lead.status == LeadStatus.VALID
        assert (lead.verification, lead.verified_by_id, lead.verified_at) == (
            "valid_more_info",
            first_owner.pk,
            verified.verified_at,
        )
        assert (lead.customer_id, lead.contact_id) == (verified.customer_id, verified.contact_id)
        assert (lead.touch_count, lead.first_touch_at) == (1, verified.first_touch_at)
        assert lead.dispatch_round == 2
        # The new owner is told it is a verified lead to follow up, not one to verify.
        events = set(
            Notification.objects.filter(recipient=new_owner).values_list("event", flat=True)
        )
        assert events == {"lead.assigned_verified"}
        # It is not their open load, and it is on their board to follow up.
        assert open_loads([new_owner.pk]) == {}
        items = board.board_for(new_owner).items
        assert [(i.kind, i.lead.pk, i.needs_verdict) for i in items] == [("valid", lead.pk, False)]
        # The earlier owner's next step on it leaves their board with the lead.
        assert board.board_for(first_owner).items == []
        customer = lead.customer
    # No 24 h verification clock for the new owner.
    with tenant_context(t):
        from leads.assignment.sla import sla_sweep

        counts = sla_sweep(timezone.now() + timedelta(hours=25))
    assert counts["unverified_rep"] == 0
    # The new owner reads the customer they now follow up.
    from django.urls import reverse

    assert (
        login(new_owner).get(reverse("customers:detail", args=[customer.public_id])).status_code
        == 200
    )
    outsider = MembershipFactory(tenant=t, role=Role.REP, user__username="outsider")
    assert (
        login(outsider).get(reverse("customers:detail", args=[customer.public_id])).status_code
        == 404
    )


def test_a_manager_reassigning_a_verified_lead_keeps_the_verdict(world):
    t = world.a.tenant
    other = add_reps(t, 1)[0]
    lead = intake(t)
    _verified(t, lead, lead.owner)
    target = other if lead.owner != other else world.a.rep
    with tenant_context(t):
        lead = Lead.objects.select_related("owner", "tenant").get(pk=lead.pk)
        lead_reassign(
            tenant=t, acting_member=world.a.manager, lead=lead, to=target, reason="客户指定"
        )
        lead = Lead.objects.get(pk=lead.pk)
        assert (lead.owner, lead.status, lead.verification) == (
            target,
            LeadStatus.VALID,
            "valid_more_info",
        )
        assert lead.touch_count == 1


def test_a_revisit_of_a_verified_lead_takes_over_the_verdict(world, english):
    from leads.board import ranking as board

    t = world.a.tenant
    add_reps(t, 2)
    first = intake(t)
    owner = first.owner
    first = _verified(t, first, owner, now=timezone.now() - timedelta(days=2))
    again = intake(t, message="第二次咨询，想约时间详谈")
    assert again.revisit_of_id == first.pk and again.owner == owner
    with tenant_context(t):
        again = Lead.objects.get(pk=again.pk)
        assert again.status == LeadStatus.VALID
        assert again.verification == first.verification and again.verified_by is None
        assert (again.customer_id, again.contact_id) == (first.customer_id, first.contact_id)
        event = LeadEvent.objects.get(lead=again, kind=LeadEventKind.VERIFIED)
        assert "taken over from the earlier lead" in str(event.text)
        # Nothing to verify: not open load; on the board as a revisit to follow up.
        assert open_loads([owner.pk]) == {}
        item = next(i for i in board.board_for(owner).items if i.lead and i.lead.pk == again.pk)
        assert (item.kind, item.urgency, item.needs_verdict) == ("revisit", "revisit_valid", False)
        assert (
            not Notification.objects.filter(event="lead.assigned", recipient=owner)
            .exclude(link=f"/leads/{first.public_id}/")
            .exists()
        )
        from leads.assignment.sla import sla_sweep

        assert sla_sweep(timezone.now() + timedelta(hours=25))["unverified_rep"] == 0
        # Logging a follow-up on it takes it off the board.
        from customers.models import PresetKind
        from customers.services import presets
        from leads.followups_services import lead_follow_up

        lead_follow_up(
            tenant=t,
            acting_member=owner,
            lead=again,
            channel="phone",
            next_action=presets(PresetKind.ACTION).get(name="安排拜访"),
            next_action_due=timezone.localdate(timezone.now(), t.tzinfo) + timedelta(days=2),
        )
        assert again.pk not in {i.lead.pk for i in board.board_for(owner).items if i.lead}
    # A revisit of a lead nobody verified yet is still to verify.
    third = intake(t, phone="13912340000", company="另一家公司")
    fourth = intake(t, phone="13912340000", company="另一家公司", message="又来了")
    assert fourth.revisit_of_id == third.pk and fourth.status == LeadStatus.ASSIGNED
