"""The writes of the opportunity's page over HTTP: technical questions, the decision chain,
the validity approval (never by the owner, within 72 h), won (refused with the missing
actions, the contract among them) and lost (a reason required). htmx gets the section
(422 with field errors, 403/409 with the refusal), a plain post a redirect; another
tenant's or another rep's ids are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from opportunities import services
from opportunities.models import (
    ChainRole,
    LostReason,
    Opportunity,
    OpportunityContact,
    OpportunityEvent,
    TechnicalQuestion,
    ValidityRequest,
)
from tests.factories import MembershipFactory
from tests.opportunities.helpers import complete, make_opportunity, map_member, stage

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _attachments_in_tmp(tmp_path, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    from opportunities.models import Attachment

    monkeypatch.setattr(
        Attachment._meta.get_field("file"), "storage", FileSystemStorage(location=tmp_path)
    )


def url(name, opp, *ids):
    return reverse(f"opportunities:{name}", args=[opp.public_id, *(i.public_id for i in ids)])


def _question(side, opp, text="兼容现有 PLC 吗?"):
    with tenant_context(side.tenant):
        return services.question_mark(
            tenant=side.tenant, acting_member=opp.owner, opportunity=opp, text=text
        )


def _request(side, opp, *, at=None):
    with tenant_context(side.tenant):
        return services.validity_request(
            tenant=side.tenant, acting_member=opp.owner, opportunity=opp, now=at
        )


# -- technical questions --------------------------------------------------------------------


def test_a_question_is_marked_and_answered(world, en):
    opp = make_opportunity(world.a)
    client = en(world.a.rep)
    response = client.post(url("question", opp), {"text": "是否支持国产数据库?"}, headers=HX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "opportunityChanged"
    assert "是否支持国产数据库?" in response.content.decode()
    with tenant_context(world.a.tenant):
        question = TechnicalQuestion.objects.get(opportunity=opp)
    response = client.post(url("question_close", opp, question))
    assert response.status_code == 302
    assert response["Location"].endswith("#questions")
    with tenant_context(world.a.tenant):
        question.refresh_from_db()
        assert question.closed_at is not None


def test_an_empty_question_is_a_field_error(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(url("question", opp), {"text": " "}, headers=HX)
    assert response.status_code == 422
    assert 'data-testid="error-text"' in response.content.decode()


# -- the decision chain ---------------------------------------------------------------------


def _role(side, name):
    with tenant_context(side.tenant):
        return ChainRole.objects.get(name=name)


def test_a_new_contact_is_mapped_into_the_chain(world, en):
    opp = make_opportunity(world.a)
    data = {
        "contact_name": "王总",
        "contact_title": "CIO",
        "contact_phone": "138 1234 5678",
        "role": str(_role(world.a, "CIO").public_id),
        "influence": "high",
        "attitude": "support",
        "contact_status": "reached",
        "key_demands": "数据不出厂",
    }
    response = en(world.a.rep).post(url("chain_add", opp), data, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="chain-member"' in html and "数据不出厂" in html
    assert "1 of 1 roles contacted (100%)" in html
    assert 'id="chain-graph-data"' in html
    with tenant_context(world.a.tenant):
        member = OpportunityContact.objects.select_related("contact").get(opportunity=opp)
        assert member.contact.customer_id == opp.customer_id
        assert member.contact.phone_key == "+8613812345678"


def test_an_existing_contact_of_the_customer_is_mapped(world, en):
    opp = make_opportunity(world.a)
    from customers.models import Contact

    with tenant_context(world.a.tenant):
        contact = Contact.objects.create(tenant=world.a.tenant, customer=opp.customer, name="赵总")
    data = {
        "contact": str(contact.public_id),
        "role": str(_role(world.a, "采购总监").public_id),
        "influence": "medium",
        "attitude": "neutral",
        "contact_status": "not_yet",
    }
    assert en(world.a.rep).post(url("chain_add", opp), data).status_code == 302
    with tenant_context(world.a.tenant):
        assert OpportunityContact.objects.get(opportunity=opp).contact_id == contact.pk


def test_mapping_without_a_contact_or_role_is_a_field_error(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(
        url("chain_add", opp),
        {"influence": "high", "attitude": "support", "contact_status": "not_yet"},
        headers=HX,
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-contact"' in html and 'data-testid="error-role"' in html


def test_another_customers_contact_is_not_a_choice(world, en):
    opp = make_opportunity(world.a)
    other = make_opportunity(world.a, customer_name="别家")
    stranger = map_member(world.a, other, "CIO")
    data = {
        "contact": str(stranger.contact.public_id),
        "role": str(_role(world.a, "CIO").public_id),
        "influence": "high",
        "attitude": "support",
        "contact_status": "not_yet",
    }
    response = en(world.a.rep).post(url("chain_add", opp), data, headers=HX)
    assert response.status_code == 422
    with tenant_context(world.a.tenant):
        assert not OpportunityContact.objects.filter(opportunity=opp).exists()


def test_a_member_is_edited_in_place_and_removed(world, en):
    opp = make_opportunity(world.a)
    member = map_member(world.a, opp, "CIO", attitude="unknown")
    client = en(world.a.rep)
    response = client.post(
        url("chain_member", opp, member),
        {
            "influence": "high",
            "attitude": "oppose",
            "contact_status": "engaged",
            "key_demands": "私有化部署",
        },
        headers=HX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "私有化部署" in html
    assert 'data-testid="reach-next"' in html and "still opposed" in html
    with tenant_context(world.a.tenant):
        member.refresh_from_db()
        assert (member.attitude, member.contact_status) == ("oppose", "engaged")
    response = client.post(url("chain_member", opp, member), {"influence": "x"}, headers=HX)
    assert response.status_code == 422
    response = client.post(url("chain_remove", opp, member), headers=HX)
    assert response.status_code == 200
    with tenant_context(world.a.tenant):
        assert not OpportunityContact.objects.filter(opportunity=opp).exists()


# -- validity (F23) -------------------------------------------------------------------------


def test_the_owner_asks_and_another_manager_approves(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(url("validity_request", opp), headers=HX)
    assert response.status_code == 200
    assert 'data-testid="validity-pending"' in response.content.decode()
    with tenant_context(world.a.tenant):
        asked = ValidityRequest.objects.get(opportunity=opp)
    # A second request while the first waits is refused.
    response = en(world.a.rep).post(url("validity_request", opp), headers=HX)
    assert response.status_code == 409
    page = en(world.a.manager).get(reverse("opportunities:detail", args=[opp.public_id]))
    assert 'data-testid="validity-decide-form"' in page.content.decode()
    response = en(world.a.manager).post(
        url("validity_decide", opp, asked), {"approve": "1", "note": "拜访属实"}, headers=HX
    )
    assert response.status_code == 200
    assert 'data-testid="validity-approval"' in response.content.decode()
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).approved_at is not None
        assert OpportunityEvent.objects.filter(opportunity=opp, kind="decided").exists()


def test_approving_your_own_is_refused(world, en):
    opp = make_opportunity(world.a, owner=world.a.manager)
    asked = _request(world.a, opp)
    client = en(world.a.manager)
    page = client.get(reverse("opportunities:detail", args=[opp.public_id])).content.decode()
    assert 'data-testid="validity-own"' in page
    assert 'data-testid="validity-decide-form"' not in page
    response = client.post(url("validity_decide", opp, asked), {"approve": "1"}, headers=HX)
    assert response.status_code == 409
    assert "another manager must approve it" in response.content.decode()
    # A rep (here the owner) is no approver at all.
    rep_opp = make_opportunity(world.a)
    rep_asked = _request(world.a, rep_opp)
    response = en(world.a.rep).post(url("validity_decide", rep_opp, rep_asked), {"approve": "1"})
    assert response.status_code == 403
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).approved_at is None
        assert Opportunity.objects.get(pk=rep_opp.pk).approved_at is None


def test_an_approval_after_72_hours_is_refused_and_the_page_says_ask_again(world, en):
    opp = make_opportunity(world.a)
    asked = _request(world.a, opp, at=timezone.now() - timedelta(hours=73))
    client = en(world.a.manager)
    html = client.get(reverse("opportunities:detail", args=[opp.public_id])).content.decode()
    assert "ask again" in html
    assert 'data-testid="validity-decide-form"' not in html
    response = client.post(url("validity_decide", opp, asked), {"approve": "1"}, headers=HX)
    assert response.status_code == 409
    # The owner may ask again.
    assert en(world.a.rep).post(url("validity_request", opp)).status_code == 302


def test_a_refusal_is_shown_with_its_note(world, en):
    opp = make_opportunity(world.a)
    asked = _request(world.a, opp)
    en(world.a.manager).post(url("validity_decide", opp, asked), {"approve": "0", "note": "没拜访"})
    html = en(world.a.rep).get(reverse("opportunities:detail", args=[opp.public_id])).content
    assert "没拜访" in html.decode()


def test_the_four_checks_show_what_is_met(world, en):
    from tests.opportunities.helpers import attach, log_follow_up

    opp = make_opportunity(world.a, budget_band="100k_500k")
    log_follow_up(world.a, opp, channel="visit")
    attach(world.a, opp, "requirement")
    html = en(world.a.rep).get(reverse("opportunities:detail", args=[opp.public_id])).content
    html = html.decode()
    for key, met in (("visit", 1), ("budget", 1), ("evidence", 1), ("approval", 0)):
        assert f'data-testid="validity-{key}" data-met="{met}"' in html, key


# -- won and lost ---------------------------------------------------------------------------


def test_win_is_refused_with_the_missing_actions_the_contract_among_them(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(url("win", opp), headers=HX)
    assert response.status_code == 409
    assert response["HX-Trigger"] == "historyChanged"
    html = response.content.decode()
    assert 'data-testid="missing"' in html
    assert "合同扫描件 uploaded with the status 已生效" in html
    assert "#attachments" in html
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).status == "open"
        assert OpportunityEvent.objects.filter(opportunity=opp, kind="refused").exists()
    # A plain post: the whole page, 409, with the list.
    response = en(world.a.rep).post(url("win", opp))
    assert response.status_code == 409
    assert "合同扫描件 uploaded with the status 已生效" in response.content.decode()


def test_win_lists_the_contract_when_only_it_is_missing(world, en):
    opp = make_opportunity(world.a)
    for code, nxt in (
        ("contact", "needs"),
        ("needs", "demo"),
        ("demo", "negotiation"),
        ("negotiation", "contract"),
    ):
        complete(world.a, opp, code)
        with tenant_context(world.a.tenant):
            services.opportunity_advance(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                opportunity=opp,
                stage=stage(world.a, nxt),
            )
    response = en(world.a.rep).post(url("win", opp), headers=HX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "合同扫描件 uploaded with the status 已生效" in html
    complete(world.a, opp, "contract")
    response = en(world.a.rep).post(url("win", opp), headers=HX)
    assert response.status_code == 200
    assert 'data-testid="closed"' in response.content.decode()
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).status == "won"


def test_lost_without_a_reason_is_a_field_error(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(url("lose", opp), {"reason": ""}, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-reason"' in html and "Choose why it was lost." in html
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).status == "open"


def test_a_reason_that_names_something_needs_its_detail(world, en):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        competitor = LostReason.objects.get(name="选择竞品")
    page = en(world.a.rep).get(reverse("opportunities:detail", args=[opp.public_id]))
    assert f'<option value="{competitor.public_id}" data-needs-detail="1">' in page.content.decode()
    response = en(world.a.rep).post(
        url("lose", opp), {"reason": str(competitor.public_id)}, headers=HX
    )
    assert response.status_code == 422
    assert 'data-testid="error-detail"' in response.content.decode()
    blocker = map_member(world.a, opp, "CIO", attitude="oppose")
    response = en(world.a.rep).post(
        url("lose", opp),
        {"reason": str(competitor.public_id), "detail": "西门子", "blocker": blocker.public_id},
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        lost = Opportunity.objects.get(pk=opp.pk)
        assert (lost.status, lost.lost_detail, lost.lost_blocker_id) == (
            "lost",
            "西门子",
            blocker.pk,
        )
    html = en(world.a.rep).get(reverse("opportunities:detail", args=[opp.public_id])).content
    assert "选择竞品: 西门子" in html.decode()


def test_a_blocker_from_another_opportunitys_chain_is_a_field_error(world, en):
    opp = make_opportunity(world.a)
    other = make_opportunity(world.a, customer_name="别家")
    stranger = map_member(world.a, other, "CIO")
    with tenant_context(world.a.tenant):
        reason = LostReason.objects.get(name="预算冻结")
    response = en(world.a.rep).post(
        url("lose", opp),
        {"reason": str(reason.public_id), "blocker": str(stranger.public_id)},
        headers=HX,
    )
    assert response.status_code == 422
    assert 'data-testid="error-blocker"' in response.content.decode()


# -- ids from elsewhere ---------------------------------------------------------------------


def test_every_write_answers_404_for_another_tenants_ids(world, en):
    theirs = make_opportunity(world.b)
    their_question = _question(world.b, theirs)
    their_member = map_member(world.b, theirs, "CIO")
    their_request = _request(world.b, theirs)
    mine = make_opportunity(world.a)
    client = en(world.a.manager)
    posts = [
        url("question", theirs),
        url("question_close", theirs, their_question),
        url("chain_add", theirs),
        url("chain_member", theirs, their_member),
        url("chain_remove", theirs, their_member),
        url("validity_request", theirs),
        url("validity_decide", theirs, their_request),
        url("win", theirs),
        url("lose", theirs),
        # Their sub-objects' ids under my opportunity.
        url("question_close", mine, their_question),
        url("chain_member", mine, their_member),
        url("chain_remove", mine, their_member),
        url("validity_decide", mine, their_request),
    ]
    for target in posts:
        assert client.post(target, {"approve": "1"}).status_code == 404, target
        assert client.post(target, {"approve": "1"}, headers=HX).status_code == 404, target
    with tenant_context(world.b.tenant):
        assert TechnicalQuestion.objects.get(pk=their_question.pk).closed_at is None
        assert OpportunityContact.objects.filter(pk=their_member.pk).exists()
        assert ValidityRequest.objects.get(pk=their_request.pk).decided_at is None


def test_another_reps_opportunity_takes_no_write_of_a_rep(world, en):
    colleague = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    theirs = make_opportunity(world.a, owner=colleague)
    question = _question(world.a, theirs)
    member = map_member(world.a, theirs, "CIO")
    asked = _request(world.a, theirs)
    client = en(world.a.rep)
    for target in (
        url("question", theirs),
        url("question_close", theirs, question),
        url("chain_add", theirs),
        url("chain_member", theirs, member),
        url("chain_remove", theirs, member),
        url("validity_request", theirs),
        url("validity_decide", theirs, asked),
        url("win", theirs),
        url("lose", theirs),
        url("attach", theirs),
    ):
        assert client.post(target).status_code == 404, target
