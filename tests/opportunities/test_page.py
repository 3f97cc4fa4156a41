"""The opportunity's page over HTTP: the header, the stage path with each requirement met
or missing and linked (the links' anchors exist), the validity checks, the decision chain,
the history; sections alone for htmx; a constant number of queries; 404 for another
tenant's and another rep's opportunity; amounts hidden from service agents; editing."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from opportunities import services
from opportunities.models import Opportunity, OpportunityEvent
from tests.factories import MembershipFactory
from tests.opportunities.helpers import (
    attach,
    log_follow_up,
    make_opportunity,
    map_member,
    pdf,
    stage,
)

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _attachments_in_tmp(tmp_path, monkeypatch):
    """Uploaded files go to a temporary directory, never into the project."""
    from django.core.files.storage import FileSystemStorage

    from opportunities.models import Attachment

    monkeypatch.setattr(
        Attachment._meta.get_field("file"), "storage", FileSystemStorage(location=tmp_path)
    )


def detail(opportunity, query=""):
    return reverse("opportunities:detail", args=[opportunity.public_id]) + query


class Ids(HTMLParser):
    """Every element id and link of a page."""

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])


def parse(html: str) -> Ids:
    parser = Ids()
    parser.feed(html)
    return parser


def test_the_page_shows_the_header_and_every_section(world, en):
    opp = make_opportunity(world.a, amount=Decimal("480000"), name="恒力液压 · 液压机")
    response = en(world.a.rep).get(detail(opp))
    assert response.status_code == 200
    html = response.content.decode()
    for testid in (
        "opportunity-name",
        "stage-path",
        "validity",
        "chain",
        "attachments",
        "questions",
        "close",
        "history",
    ):
        assert f'data-testid="{testid}"' in html, testid
    assert "恒力液压 · 液压机" in html
    assert "¥480,000" in html
    assert "初步接触" in html and "合同签署" in html
    # Every stage's required actions are listed, met or missing.
    assert html.count('data-testid="requirement"') == 3 + 4 + 4 + 4 + 3
    # The move form posts to the pipeline's endpoint with the next stage chosen.
    assert f'action="{detail(opp)}advance/"' in html
    assert '<option value="needs" selected>' in html


def test_a_missing_requirement_links_to_the_place_where_it_is_done(world, en):
    opp = make_opportunity(world.a, product_line="")
    client = en(world.a.rep)
    page = parse(client.get(detail(opp)).content.decode())
    edit = reverse("opportunities:edit", args=[opp.public_id])
    assert f"{edit}#id_product_line" in page.links
    assert f"{detail(opp)}#chain" in page.links
    assert f"{detail(opp)}?attach=requirement#attachments" in page.links
    assert f"{detail(opp)}#questions" in page.links
    # The anchors exist: on this page and on the edit page.
    assert {"chain", "attachments", "questions", "validity", "history"} <= page.ids
    edit_page = parse(client.get(edit).content.decode())
    for field in ("product_line", "amount", "budget_band", "expected_close", "contact"):
        assert f"id_{field}" in edit_page.ids


def test_an_attach_link_preselects_the_kind_of_file(world, en):
    opp = make_opportunity(world.a)
    html = en(world.a.rep).get(detail(opp, "?attach=proposal")).content.decode()
    assert '<option value="proposal" selected>' in html


def test_met_requirements_show_as_done(world, en):
    opp = make_opportunity(world.a)
    log_follow_up(world.a, opp)
    map_member(world.a, opp, "CIO")
    html = en(world.a.rep).get(detail(opp)).content.decode()
    # 初步接触: product line, a follow-up, a chain member: all met.
    start = html.index('data-testid="stage-contact"')
    block = html[start : html.index("</li>\n      \n      <li", start)]
    assert block.count('data-met="1"') == 3
    assert "Ready for 需求确认" in html


def test_a_section_alone_for_htmx(world, en):
    opp = make_opportunity(world.a)
    client = en(world.a.rep)
    for name in ("summary", "stages", "validity", "chain", "history", "close"):
        response = client.get(detail(opp), headers={**HX, "HX-Target": name})
        html = response.content.decode()
        assert response.status_code == 200
        assert "<html" not in html
        assert f'id="{name}"' in html


def test_the_page_reads_a_constant_number_of_queries(world, en, django_assert_max_num_queries):
    opp = make_opportunity(world.a)
    client = en(world.a.rep)
    client.get(detail(opp))  # warm the caches (the session, the content types)
    with django_assert_max_num_queries(32) as few:
        assert client.get(detail(opp)).status_code == 200
    for i in range(6):
        map_member(world.a, opp, "CIO", name=f"王总{i}")
        attach(world.a, opp, "proposal", pdf(f"方案{i}.pdf"))
        log_follow_up(world.a, opp)
        with tenant_context(world.a.tenant):
            services.question_mark(
                tenant=world.a.tenant, acting_member=world.a.rep, opportunity=opp, text=f"问{i}"
            )
    with django_assert_max_num_queries(len(few)):
        assert client.get(detail(opp)).status_code == 200


def test_the_history_lists_every_change_newest_first_with_its_path_and_actor(world, en):
    opp = make_opportunity(world.a, amount=Decimal("100000"))
    with tenant_context(world.a.tenant):
        services.opportunity_update(
            tenant=world.a.tenant,
            acting_member=world.a.rep,
            opportunity=opp,
            changes={"amount": Decimal("150000")},
        )
        with pytest.raises(services.RequirementsUnmet):
            services.opportunity_advance(
                tenant=world.a.tenant,
                acting_member=world.a.rep,
                opportunity=opp,
                stage=stage(world.a, "needs"),
            )
    html = en(world.a.rep).get(detail(opp)).content.decode()
    history = html[html.index('id="history"') :]
    kinds = [
        part.split('"')[0] for part in history.split('data-testid="history-entry" data-kind="')[1:]
    ]
    # (The amount's entry is dated by its transaction's start: in this test, the test's.)
    assert kinds[0] == "refused" and sorted(kinds[1:]) == ["amount", "created"]
    assert "¥100,000 → ¥150,000" in history
    assert "Refused: 需求确认 needs" in history
    assert "Form" in history and world.a.rep.display_name in history


def test_the_history_is_paginated(world, en):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        for _ in range(25):
            OpportunityEvent.objects.create(
                tenant=world.a.tenant, opportunity=opp, kind="requested", path="form"
            )
    client = en(world.a.rep)
    html = client.get(detail(opp)).content.decode()
    assert html.count('data-testid="history-entry"') == 20
    assert "1 / 2" in html
    older = client.get(detail(opp, "?page=2"), headers={**HX, "HX-Target": "history"})
    assert older.content.decode().count('data-testid="history-entry"') == 6


def test_another_tenants_or_another_reps_opportunity_is_404(world, en):
    theirs = make_opportunity(world.b)
    assert en(world.a.manager).get(detail(theirs)).status_code == 404
    assert en(world.a.manager).get(detail(theirs), headers=HX).status_code == 404
    colleague = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    colleagues = make_opportunity(world.a, owner=colleague)
    assert en(world.a.rep).get(detail(colleagues)).status_code == 404
    edit = reverse("opportunities:edit", args=[colleagues.public_id])
    assert en(world.a.rep).get(edit).status_code == 404
    assert en(world.a.manager).get(detail(colleagues)).status_code == 200
    edit_b = reverse("opportunities:edit", args=[theirs.public_id])
    assert en(world.a.manager).get(edit_b).status_code == 404


def test_a_service_agent_reads_it_without_amounts_and_without_forms(world, en):
    opp = make_opportunity(world.a, amount=Decimal("480000"))
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    response = en(agent).get(detail(opp))
    html = response.content.decode()
    assert response.status_code == 200
    assert "480,000" not in html and "480000" not in html
    assert 'data-testid="opportunity-amount"' not in html
    assert 'data-testid="attach-form"' not in html
    assert 'data-testid="move-form"' not in html
    assert en(agent).get(reverse("opportunities:edit", args=[opp.public_id])).status_code == 404


def test_marketing_reads_the_page_but_does_not_write(world, en):
    opp = make_opportunity(world.a)
    marketer = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    html = en(marketer).get(detail(opp)).content.decode()
    assert 'data-testid="lose-form"' not in html
    question = reverse("opportunities:question", args=[opp.public_id])
    assert en(marketer).post(question, {"text": "?"}).status_code == 404


# -- editing --------------------------------------------------------------------------------


def _edit(opp):
    return reverse("opportunities:edit", args=[opp.public_id])


def test_the_owner_edits_the_fields_and_the_amount_goes_into_the_history(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(
        _edit(opp),
        {
            "name": "恒力液压 二期",
            "product_line": "液压机",
            "amount": "300000",
            "budget_band": "100k_500k",
            "expected_close": "2027-03",
            "contact": "",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == detail(opp)
    with tenant_context(world.a.tenant):
        opp.refresh_from_db()
        assert opp.name == "恒力液压 二期"
        assert opp.amount == Decimal("300000")
        assert opp.budget_band == "100k_500k"
        assert str(opp.expected_close) == "2027-03-01"
        assert OpportunityEvent.objects.filter(opportunity=opp, kind="amount").exists()


def test_edit_errors_come_back_on_the_fields_as_422(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(
        _edit(opp), {"name": "", "amount": "-5", "budget_band": "pending", "expected_close": "x"}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Give the opportunity a name." in html
    assert 'data-testid="error-amount"' in html
    assert "Enter a month like 2026-03." in html
    with tenant_context(world.a.tenant):
        opp.refresh_from_db()
        assert opp.name != ""


def test_only_managers_hand_an_opportunity_over(world, en):
    opp = make_opportunity(world.a)
    # A rep's form has no owner field; a posted owner is ignored.
    html = en(world.a.rep).get(_edit(opp)).content.decode()
    assert 'id="id_owner"' not in html
    other = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    base = {"name": opp.name, "product_line": "液压机", "budget_band": "pending"}
    en(world.a.rep).post(_edit(opp), {**base, "owner": str(other.public_id)})
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).owner_id == world.a.rep.pk
    response = en(world.a.manager).post(_edit(opp), {**base, "owner": str(other.public_id)})
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).owner_id == other.pk
    # Another tenant's member is not a choice.
    response = en(world.a.manager).post(_edit(opp), {**base, "owner": str(world.b.rep.public_id)})
    assert response.status_code == 422
