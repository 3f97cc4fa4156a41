"""Assignment on the lead's page (F12, F13): "why this rep" for managers and the owner,
reassign, return to the pool by hand, the pool filter on the lead list, and the page's
queries as its history grows.

The rep's side (recording a contact, "why didn't I get it", my profile, the training
card): test_assignment_rep_views.py."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.models import AuditEvent, Notification
from crm.tenancy import tenant_context
from leads.assignment.dispatch import dispatch_due, lead_reassign
from leads.models import (
    AssignmentDecision,
    DecisionKind,
    DecisionOutcome,
    Lead,
    LeadStatus,
    PoolReason,
    RepProfile,
)
from tests.leads.assignment_view_helpers import (
    channel_fixture,  # noqa: F401 (the channel fixture)
    dispatched,
    intake,
    reload,
    url,
)
from tests.leads.factories import make_channel, make_lead, make_rep

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")


def decisions(lead: Lead) -> list[AssignmentDecision]:
    with tenant_context(lead.tenant):
        return list(AssignmentDecision.objects.filter(lead=lead))


# -- "why this rep" on the lead's page -----------------------------------------------------------


def test_the_lead_page_says_why_this_rep_with_every_candidate_for_managers(world, en, channel):
    t = world.a.tenant
    expert = make_rep(t, "expert", industries=["manufacturing"])
    lead = dispatched(t, channel, industry="manufacturing")
    assert lead.owner == expert
    page = en(world.a.manager).get(url("detail", lead))
    assert page.status_code == 200
    text = page.text
    assert 'data-testid="why-this-rep"' in text
    assert f"Assigned to {expert.display_name}" in text
    assert "Lead score 50: the base score, no rule matched." in text
    assert 'data-testid="why-candidates"' in text
    assert world.a.rep.display_name in text  # a candidate in the table
    assert "Score 60, below the best band (from 72.25)" in text
    # The assignment state.
    assert 'data-testid="assignment-state"' in text
    assert 'data-testid="lead-score">50<' in text
    assert 'data-testid="reassign-form"' in text and 'data-testid="pool-form"' in text
    assert 'data-testid="touch-form"' not in text  # not the owner


def test_the_owner_reads_why_without_the_other_candidates(world, en, channel):
    t = world.a.tenant
    expert = make_rep(t, "expert", industries=["manufacturing"])
    lead = dispatched(t, channel, industry="manufacturing")
    text = en(expert).get(url("detail", lead)).text
    assert f"Assigned to {expert.display_name}" in text
    assert f"{expert.display_name} had the top score (85)" in text
    assert 'data-testid="why-candidates"' not in text
    assert world.a.rep.display_name not in text
    assert 'data-testid="reassign-form"' not in text
    assert 'data-testid="touch-form"' in text


def test_earlier_decisions_are_listed(world, en, channel):
    t = world.a.tenant
    other = make_rep(t, "other")
    lead = dispatched(t, channel)
    target = other if lead.owner_id != other.pk else world.a.rep
    client = en(world.a.manager)
    client.post(url("reassign", lead), {"to": target.public_id, "reason": "客户要求换人"})
    text = client.get(url("detail", lead)).text
    assert f"Reassigned to {target.display_name}" in text
    assert 'data-testid="earlier-decisions"' in text
    assert "1 earlier decision" in text


def test_a_lead_without_decisions_says_so(world, en, channel):
    lead = make_lead(world.a.tenant, channel)
    text = en(world.a.manager).get(url("detail", lead)).text
    assert "No assignment decision has been recorded for this lead." in text


# -- reassign (F13) ------------------------------------------------------------------------------


def test_a_manager_reassigns_with_a_reason(world, en, channel):
    t = world.a.tenant
    lead = dispatched(t, channel)
    assert lead.owner == world.a.rep
    target = make_rep(t, "target")
    response = en(world.a.manager).post(
        url("reassign", lead), {"to": target.public_id, "reason": "客户指定王经理对接"}
    )
    assert response.status_code == 302 and response.url == url("detail", lead)
    lead = reload(lead)
    assert lead.owner == target and lead.status == LeadStatus.ASSIGNED
    latest = decisions(lead)[0]
    assert latest.kind == DecisionKind.MANUAL and latest.outcome == DecisionOutcome.ASSIGNED
    assert latest.reason == "客户指定王经理对接" and latest.actor == world.a.manager.user
    with tenant_context(t):
        assert latest.previous_owner == world.a.rep
    with tenant_context(t):
        event = AuditEvent.objects.get(action="lead.reassigned", object_id=str(lead.public_id))
        assert event.actor == world.a.manager.user
        assert Notification.objects.filter(recipient=target, event="lead.reassigned").exists()


def test_a_manager_assigns_a_pooled_lead_the_same_way(world, en, channel):
    t = world.a.tenant
    with tenant_context(t):
        RepProfile.objects.create(tenant=t, membership=world.a.rep, is_available=False)
    lead = dispatched(t, channel)
    assert lead.owner is None and lead.dispatch_after is not None  # waiting
    target = make_rep(t, "target")
    page = en(world.a.manager).get(url("detail", lead)).text
    assert "Assign to a rep" in page and 'data-testid="waiting"' in page
    assert 'data-testid="pool-form"' not in page  # nobody to take it from
    en(world.a.manager).post(url("reassign", lead), {"to": target.public_id, "reason": "急单"})
    lead = reload(lead)
    assert lead.owner == target and lead.dispatch_after is None


def test_a_rep_may_not_reassign(world, login, channel):
    lead = dispatched(world.a.tenant, channel)
    target = make_rep(world.a.tenant, "target")
    response = login(world.a.rep).post(
        url("reassign", lead), {"to": target.public_id, "reason": "我不想要"}
    )
    assert response.status_code == 403
    assert reload(lead).owner == world.a.rep


def test_a_reassignment_needs_a_reason(world, en, channel):
    lead = dispatched(world.a.tenant, channel)
    target = make_rep(world.a.tenant, "target")
    response = en(world.a.manager).post(url("reassign", lead), {"to": target.public_id})
    assert response.status_code == 400
    assert 'data-testid="error-reason"' in response.text
    assert "Say why: the reason is kept in the audit log." in response.text
    assert reload(lead).owner == world.a.rep
    assert len(decisions(lead)) == 1


def test_a_rep_of_another_tenant_is_no_choice(world, en, channel):
    lead = dispatched(world.a.tenant, channel)
    response = en(world.a.manager).post(
        url("reassign", lead), {"to": world.b.rep.public_id, "reason": "跨租户"}
    )
    assert response.status_code == 400
    assert 'data-testid="error-to"' in response.text
    assert "Choose an active rep of this team." in response.text
    assert reload(lead).owner == world.a.rep


def test_the_manager_is_no_choice_either(world, en, channel):
    lead = dispatched(world.a.tenant, channel)
    response = en(world.a.manager).post(
        url("reassign", lead), {"to": world.a.manager.public_id, "reason": "我自己跟"}
    )
    assert response.status_code == 400 and 'data-testid="error-to"' in response.text


def test_another_tenants_lead_is_not_found(world, login):
    foreign = dispatched(world.b.tenant, make_channel(world.b.tenant))
    client = login(world.a.manager)
    for name in ("reassign", "pool", "touch"):
        response = client.post(url(name, foreign), {"to": world.a.rep.public_id, "reason": "x"})
        assert response.status_code == 404, name
    assert reload(foreign).owner == world.b.rep


def test_reassign_and_pool_are_post_only(world, login, channel):
    lead = dispatched(world.a.tenant, channel)
    client = login(world.a.manager)
    assert client.get(url("reassign", lead)).status_code == 405
    assert client.get(url("pool", lead)).status_code == 405


# -- return to pool by hand (F13) ----------------------------------------------------------------


def test_a_manager_puts_a_lead_back_in_the_pool(world, en, channel):
    t = world.a.tenant
    lead = dispatched(t, channel)
    response = en(world.a.admin).post(url("pool", lead), {"reason": "客户要求暂缓"})
    assert response.status_code == 302
    lead = reload(lead)
    assert lead.owner is None and lead.status == LeadStatus.NEW
    assert lead.pooled_at is not None and lead.pool_reason == PoolReason.MANUAL
    latest = decisions(lead)[0]
    assert latest.outcome == DecisionOutcome.POOLED and latest.reason == "客户要求暂缓"
    assert latest.actor == world.a.admin.user
    with tenant_context(t):
        assert AuditEvent.objects.filter(
            action="lead.returned_to_pool", object_id=str(lead.public_id)
        ).exists()
    page = en(world.a.manager).get(url("detail", lead)).text
    assert "Put back in the pool by hand" in page
    assert "Put back in the pool by a manager" in page  # the pool reason, in the state
    assert "客户要求暂缓" in page


def test_returning_to_the_pool_needs_a_reason_and_a_manager(world, en, login, channel):
    lead = dispatched(world.a.tenant, channel)
    response = en(world.a.manager).post(url("pool", lead), {"reason": "  "})
    assert response.status_code == 400
    assert "Say why the lead goes back to the pool." in response.text
    assert login(world.a.rep).post(url("pool", lead), {"reason": "x"}).status_code == 403
    assert reload(lead).owner == world.a.rep


# -- the lead list -------------------------------------------------------------------------------


def test_the_list_filters_the_pool_and_shows_the_score(world, en, channel):
    t = world.a.tenant
    with tenant_context(t):
        RepProfile.objects.create(tenant=t, membership=world.a.rep, is_available=False)
    pooled = dispatched(t, channel, company="Pooled Ltd", phone="+8613900000001")
    waiting = dispatched(t, channel, company="Waiting Ltd", phone="+8613900000002")
    with tenant_context(t):
        # The first lead's wait ends: still nobody, so it goes to the pool.
        dispatch_due(now=reload(pooled).dispatch_after, limit=1)
    assert reload(pooled).pool_reason == PoolReason.NO_CANDIDATE
    assert reload(waiting).dispatch_after is not None
    make_lead(t, channel, company="Owned Ltd", owner=world.a.rep, status=LeadStatus.ASSIGNED)
    client = en(world.a.manager)

    def companies(**params):
        response = client.get(LIST, params)
        with tenant_context(t):
            return sorted(r.record.company for r in response.context["table"].paginated_rows)

    assert companies(pool="pool") == ["Pooled Ltd"]
    assert companies(pool="waiting") == ["Waiting Ltd"]
    assert companies(pool="any") == ["Pooled Ltd", "Waiting Ltd"]
    assert len(companies()) == 3
    page = client.get(LIST).text
    assert 'data-testid="pool-filter"' in page and "Waiting for a rep" in page
    assert "Lead score" in page
    # A rep's list holds their own leads only: no pool filter there.
    assert 'data-testid="pool-filter"' not in en(world.a.rep).get(LIST).text


def test_the_lead_page_query_count_does_not_grow_with_its_history(world, login):
    """Decisions, touches and reassignments pile up on a lead over weeks: its page reads
    them in a fixed number of queries (the timeline and decision list are paginated)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = make_rep(world.a.tenant, "other")
    lead = intake(world.a.tenant)
    client = login(world.a.manager)

    def page_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url("detail", lead)).status_code == 200
        return len(ctx.captured_queries)

    page_queries()  # warm: sessions, the policy version
    few = page_queries()
    with tenant_context(world.a.tenant):
        for i in range(12):
            lead.refresh_from_db()
            target = other if lead.owner_id != other.pk else world.a.rep
            lead_reassign(
                tenant=world.a.tenant,
                acting_member=world.a.manager,
                lead=lead,
                to=target,
                reason=f"第 {i} 次",
            )
    assert page_queries() == few
