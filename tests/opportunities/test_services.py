"""The opportunity services on real rows: every required-action kind, the one check on
every path, the history the triggers write, won and lost rules, the cycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.tenancy import tenant_context
from opportunities import services
from opportunities.models import (
    EventKind,
    LostReason,
    Opportunity,
    OpportunityContact,
    OpportunityEvent,
    OpportunityStatus,
)
from tests.opportunities.helpers import (
    PNG,
    attach,
    complete,
    log_follow_up,
    make_opportunity,
    map_member,
    pdf,
    stage,
)

pytestmark = pytest.mark.django_db


def _advance(side, opportunity, code, *, path="form", by=None):
    with tenant_context(side.tenant):
        return services.opportunity_advance(
            tenant=side.tenant,
            acting_member=by or opportunity.owner,
            opportunity=opportunity,
            stage=stage(side, code),
            path=path,
        )


def _missing(side, opportunity, code):
    """The refusal, caught inside the tenant's transaction (as the views catch it), so that
    its history entry is kept."""
    with tenant_context(side.tenant), pytest.raises(services.RequirementsUnmet) as caught:
        services.opportunity_advance(
            tenant=side.tenant,
            acting_member=opportunity.owner,
            opportunity=opportunity,
            stage=stage(side, code),
        )
    return caught.value


def test_create_starts_in_the_first_stage_with_its_probability_and_history(world):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        assert opp.stage.code == "contact"
        assert opp.probability == 10
        assert opp.status == OpportunityStatus.OPEN
        event = OpportunityEvent.objects.get(opportunity=opp)
        assert event.kind == EventKind.CREATED
        assert event.actor_id == world.a.rep.pk
        assert event.path == "form"


def test_a_move_with_unmet_requirements_changes_nothing_and_lists_them(world):
    opp = make_opportunity(world.a, product_line="")
    refusal = _missing(world.a, opp, "needs")
    labels = [c.requirement.kind for c in refusal.missing]
    assert sorted(labels) == ["decision_chain", "field", "follow_ups"]
    assert all(c.link for c in refusal.missing)
    with tenant_context(world.a.tenant):
        opp.refresh_from_db()
        assert opp.stage.code == "contact"
        refused = OpportunityEvent.objects.get(opportunity=opp, kind=EventKind.REFUSED)
        assert refused.detail["target"] == "needs"
        assert len(refused.detail["missing"]) == 3
        assert not OpportunityEvent.objects.filter(opportunity=opp, kind=EventKind.STAGE).exists()


def test_each_requirement_kind_is_met_by_its_evidence(world):
    opp = make_opportunity(world.a)
    complete(world.a, opp, "contact")
    moved = _advance(world.a, opp, "needs")
    assert moved.stage.code == "needs"
    # needs → demo: an attachment, a field (budget band), a technical member, 2 follow-ups
    refusal = _missing(world.a, moved, "demo")
    kinds = {c.requirement.kind for c in refusal.missing}
    assert kinds == {"attachment", "field", "decision_chain", "follow_ups"}  # 1 follow-up so far
    complete(world.a, moved, "needs")
    assert _advance(world.a, moved, "demo").stage.code == "demo"
    # demo → negotiation: a proposal PDF, a question, a 技术疑虑 follow-up, a decision maker
    refusal = _missing(world.a, moved, "negotiation")
    kinds = {c.requirement.kind for c in refusal.missing}
    # the 技术疑虑 follow-up and the decision maker (the CIO of the first stage) are there
    assert kinds == {"attachment", "question"}


def test_skipping_a_stage_skips_none_of_its_requirements(world):
    opp = make_opportunity(world.a)
    complete(world.a, opp, "contact")
    refusal = _missing(world.a, opp, "negotiation")
    stages = {c.requirement.stage.code for c in refusal.missing}
    assert stages == {"needs", "demo"}


def test_moving_back_is_free_and_recorded(world):
    opp = make_opportunity(world.a)
    complete(world.a, opp, "contact")
    _advance(world.a, opp, "needs")
    back = _advance(world.a, opp, "contact", path="drag")
    assert back.stage.code == "contact"
    with tenant_context(world.a.tenant):
        moves = list(
            OpportunityEvent.objects.filter(opportunity=opp, kind=EventKind.STAGE).order_by("id")
        )
        assert [(m.from_stage.code, m.to_stage.code, m.path) for m in moves] == [
            ("contact", "needs", "form"),
            ("needs", "contact", "drag"),
        ]


def test_a_queryset_update_cannot_skip_the_history(world):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        Opportunity.objects.filter(pk=opp.pk).update(stage=stage(world.a, "demo"), amount=5)
        kinds = set(OpportunityEvent.objects.filter(opportunity=opp).values_list("kind", "path"))
        assert (EventKind.STAGE, "sql") in kinds
        assert (EventKind.AMOUNT, "sql") in kinds


def test_bulk_goes_through_the_same_check(world):
    ready = make_opportunity(world.a, customer_name="甲公司")
    complete(world.a, ready, "contact")
    blocked = make_opportunity(world.a, customer_name="乙公司", product_line="")
    with tenant_context(world.a.tenant):
        moved, refused = services.opportunities_advance_many(
            tenant=world.a.tenant,
            acting_member=world.a.manager,
            opportunities=[ready, blocked],
            stage=stage(world.a, "needs"),
        )
    assert [o.pk for o in moved] == [ready.pk]
    assert [r.opportunity.pk for r in refused] == [blocked.pk]
    with tenant_context(world.a.tenant):
        assert OpportunityEvent.objects.filter(opportunity=ready, path="bulk").exists()


def test_another_rep_cannot_move_it(world):
    from tests.factories import MembershipFactory

    other = MembershipFactory(tenant=world.a.tenant, role="rep")
    opp = make_opportunity(world.a)
    with pytest.raises(PermissionDenied):
        _advance(world.a, opp, "needs", by=other)


def test_wrong_file_type_and_size_are_field_errors(world):
    opp = make_opportunity(world.a)
    with pytest.raises(ValidationError) as caught:
        attach(world.a, opp, "proposal", pdf("fake.pdf", body=PNG))
    assert "file" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        attach(world.a, opp, "proposal", pdf("big.pdf", body=b"%PDF-" + b"0" * (31 * 1024 * 1024)))
    assert "MB" in caught.value.message_dict["file"][0]


def test_follow_ups_touching_a_role_update_its_contact_status(world):
    opp = make_opportunity(world.a)
    cio = map_member(world.a, opp, "CIO", attitude="unknown")
    buyer = map_member(world.a, opp, "采购总监", attitude="unknown")
    log_follow_up(world.a, opp, roles=["decision_maker"])
    with tenant_context(world.a.tenant):
        cio.refresh_from_db()
        buyer.refresh_from_db()
        assert cio.contact_status == "reached"
        assert buyer.contact_status == "not_yet"
    log_follow_up(world.a, opp, roles=["decision_maker"])
    with tenant_context(world.a.tenant):
        cio.refresh_from_db()
        assert cio.contact_status == "engaged"


def test_validity_needs_all_four_checks_and_a_timely_approval_by_another(world):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        assert not Opportunity.objects.get(pk=opp.pk).is_valid
    log_follow_up(world.a, opp, channel="visit")
    attach(world.a, opp, "requirement")
    with tenant_context(world.a.tenant):
        opp.refresh_from_db()
        services.opportunity_update(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            opportunity=opp,
            changes={"budget_band": "500k_1m"},
        )
        request = services.validity_request(
            tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp
        )
        # the owner cannot approve their own
        with pytest.raises(PermissionDenied):
            services.validity_decide(
                tenant=world.a.tenant, acting_member=world.a.rep, request=request, approve=True
            )
        late = request.requested_at + timedelta(hours=73)
        with pytest.raises(ValidationError):
            services.validity_decide(
                tenant=world.a.tenant,
                acting_member=world.a.manager,
                request=request,
                approve=True,
                now=late,
            )
        services.validity_decide(
            tenant=world.a.tenant,
            acting_member=world.a.manager,
            request=request,
            approve=True,
            now=request.requested_at + timedelta(hours=71),
        )
        opp.refresh_from_db()
        assert opp.is_valid
        assert OpportunityEvent.objects.filter(opportunity=opp, kind=EventKind.VALIDITY).exists()
        # a budget back to 待确认 makes it invalid again, whatever wrote it
        Opportunity.objects.filter(pk=opp.pk).update(budget_band="pending")
        opp.refresh_from_db()
        assert not opp.is_valid


def test_a_manager_owning_it_cannot_approve_it(world):
    opp = make_opportunity(world.a, owner=world.a.manager)
    with tenant_context(world.a.tenant):
        request = services.validity_request(
            tenant=world.a.tenant, acting_member=world.a.manager, opportunity=opp
        )
        with pytest.raises(ValidationError):
            services.validity_decide(
                tenant=world.a.tenant, acting_member=world.a.manager, request=request, approve=True
            )


def test_lost_needs_a_reason_and_its_detail(world):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        with pytest.raises(ValidationError) as caught:
            services.opportunity_lose(
                tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp, reason=None
            )
        assert "reason" in caught.value.message_dict
        competitor = LostReason.objects.get(name="选择竞品")
        with pytest.raises(ValidationError) as caught:
            services.opportunity_lose(
                tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp, reason=competitor
            )
        assert "detail" in caught.value.message_dict
    cto = map_member(world.a, opp, "CIO", attitude="oppose")
    with tenant_context(world.a.tenant):
        lost = services.opportunity_lose(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            opportunity=opp,
            reason=competitor,
            detail="西门子",
            blocker=cto,
        )
        assert lost.status == "lost" and lost.probability == 0
        assert lost.lost_blocker == cto
        assert OpportunityEvent.objects.filter(opportunity=opp, kind=EventKind.STATUS).exists()
        with pytest.raises(ValidationError):
            services.opportunity_advance(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                opportunity=lost,
                stage=stage(world.a, "needs"),
            )


def test_won_needs_every_stage_and_an_effective_contract_and_closes_the_cycle(world):
    from tests.leads.factories import make_lead

    with tenant_context(world.a.tenant):
        from tests.opportunities.helpers import make_customer

        customer = make_customer(world.a)
        lead = make_lead(world.a.tenant, customer=customer, status="valid")
        screened = timezone.now() - timedelta(days=63)
        type(lead).objects.filter(pk=lead.pk).update(verified_at=screened)
        lead.refresh_from_db()
    opp = make_opportunity(world.a, customer=customer, origin_lead=lead)
    for code in ("contact", "needs", "demo", "negotiation"):
        complete(world.a, opp, code)
        nxt = {
            "contact": "needs",
            "needs": "demo",
            "demo": "negotiation",
            "negotiation": "contract",
        }[code]
        _advance(world.a, opp, nxt)
    with tenant_context(world.a.tenant):
        with pytest.raises(services.RequirementsUnmet) as caught:
            services.opportunity_win(
                tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp
            )
        assert any(c.requirement.kind == "attachment" for c in caught.value.missing)
    attach(world.a, opp, "contract", pdf("contract.pdf"))  # uploaded, not yet 已生效
    complete(world.a, opp, "contract")
    with tenant_context(world.a.tenant):
        won = services.opportunity_win(
            tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp
        )
        assert won.status == "won" and won.probability == 100
        assert won.lead_to_contract_days == 63
        assert won.cycle_started_at == screened


def test_creating_from_an_unverified_lead_is_refused(world):
    from tests.leads.factories import make_lead
    from tests.opportunities.helpers import make_customer

    customer = make_customer(world.a)
    with tenant_context(world.a.tenant):
        lead = make_lead(world.a.tenant, customer=customer)
        with pytest.raises(ValidationError):
            services.opportunity_create(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                customer=customer,
                origin_lead=lead,
            )


def test_chain_member_must_be_the_customers_contact(world):
    opp = make_opportunity(world.a)
    other = make_opportunity(world.a, customer_name="别家")
    member = map_member(world.a, other, "财务")
    with tenant_context(world.a.tenant):
        from opportunities.models import ChainRole

        with pytest.raises(ValidationError):
            services.chain_member_add(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                opportunity=opp,
                role=ChainRole.objects.get(name="财务"),
                contact=member.contact,
            )
        assert OpportunityContact.objects.filter(opportunity=opp).count() == 0
