"""Every HTTP path that moves opportunities goes through the one check: the kanban's drag
and "move to" (`advance`, as a fragment, JSON or a plain form), the bulk move and the
import. A refusal answers 409 with the missing items, each linked, changes nothing and
keeps its history entry; ids of another tenant or another rep are 404 (or listed as not
found)."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from opportunities import services
from opportunities.models import EventKind, LostReason, Opportunity, OpportunityEvent
from tests.factories import MembershipFactory
from tests.opportunities.helpers import complete, make_opportunity

pytestmark = pytest.mark.django_db

BULK = reverse("opportunities:bulk")
IMPORT = reverse("opportunities:import")
HTMX = {"HTTP_HX_REQUEST": "true"}


def kanban(opportunity) -> dict:
    """The headers of the kanban's script (static/opportunities/kanban.js)."""
    return {**HTMX, "HTTP_HX_TARGET": f"card-{opportunity.public_id}"}


JSON = {"HTTP_ACCEPT": "application/json"}


def advance_url(opportunity) -> str:
    return reverse("opportunities:advance", args=[opportunity.public_id])


def stage_of(side, opportunity) -> str:
    with tenant_context(side.tenant):
        return Opportunity.objects.get(pk=opportunity.pk).stage.code


def events(side, opportunity, kind) -> list[OpportunityEvent]:
    with tenant_context(side.tenant):
        return list(
            OpportunityEvent.objects.filter(opportunity=opportunity, kind=kind)
            .select_related("from_stage", "to_stage")
            .order_by("id")
        )


def lose(side, opportunity):
    with tenant_context(side.tenant):
        return services.opportunity_lose(
            tenant=side.tenant,
            acting_member=opportunity.owner,
            opportunity=opportunity,
            reason=LostReason.objects.get(name="预算冻结"),
        )


# -- one: the drag, the form, JSON ---------------------------------------------------------------


def test_a_refused_drag_answers_409_with_the_missing_items_and_changes_nothing(world, en):
    opp = make_opportunity(world.a)  # nothing of 初步接触 done but the product line
    client = en(world.a.rep)
    response = client.post(advance_url(opp), {"stage": "needs", "path": "drag"}, **kanban(opp))
    assert response.status_code == 409
    body = response.content.decode()
    assert 'data-testid="missing"' in body
    assert "Not moved to 需求确认" in body
    assert body.count('data-testid="missing-item"') == 2
    customer_page = reverse("customers:detail", args=[opp.customer.public_id])
    assert f'href="{customer_page}#follow-up"' in body  # each linked to where it is done
    detail = reverse("opportunities:detail", args=[opp.public_id])
    assert f'href="{detail}#chain"' in body
    assert "<html" not in body  # the partial, shown in place
    # Nothing changed; the refusal is in the history, with its path.
    assert stage_of(world.a, opp) == "contact"
    assert events(world.a, opp, EventKind.STAGE) == []
    [refused] = events(world.a, opp, EventKind.REFUSED)
    assert refused.path == "drag"
    assert refused.actor_id == world.a.rep.pk
    assert refused.detail["target"] == "needs"
    assert {m["kind"] for m in refused.detail["missing"]} == {"follow_ups", "decision_chain"}


def test_a_refusal_in_json_is_the_services_list(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(advance_url(opp), {"stage": "needs", "path": "drag"}, **JSON)
    assert response.status_code == 409
    data = response.json()
    assert data["opportunity"] == str(opp.public_id)
    assert data["target"] == "needs"
    assert {m["kind"] for m in data["missing"]} == {"follow_ups", "decision_chain"}
    assert all(m["link"] and not m["met"] for m in data["missing"])
    assert stage_of(world.a, opp) == "contact"


def test_a_refused_plain_form_answers_a_409_page_with_links_and_a_way_back(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(advance_url(opp), {"stage": "demo"})  # path: form
    assert response.status_code == 409
    body = response.content.decode()
    assert "<html" in body
    assert 'data-testid="missing"' in body
    # Skipping 需求确认 skips none of its requirements: both stages' missing items.
    assert "初步接触" in body and "需求确认" in body
    assert body.count('data-testid="missing-item"') >= 5
    assert reverse("opportunities:kanban") in body
    assert reverse("opportunities:detail", args=[opp.public_id]) in body
    assert stage_of(world.a, opp) == "contact"
    [refused] = events(world.a, opp, EventKind.REFUSED)
    assert refused.path == "form"


def test_a_drag_that_is_allowed_moves_and_answers_the_card(world, en):
    opp = make_opportunity(world.a, amount=480000)
    complete(world.a, opp, "contact")
    response = en(world.a.rep).post(
        advance_url(opp), {"stage": "needs", "path": "drag"}, **kanban(opp)
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="kanban-card"' in body
    assert 'data-stage="needs"' in body and 'data-probability="25"' in body
    assert "¥480,000" in body
    assert stage_of(world.a, opp) == "needs"
    [move] = events(world.a, opp, EventKind.STAGE)
    assert (move.from_stage.code, move.to_stage.code, move.path) == ("contact", "needs", "drag")


def test_a_plain_form_that_is_allowed_redirects_to_the_opportunity(world, en):
    opp = make_opportunity(world.a)
    complete(world.a, opp, "contact")
    response = en(world.a.manager).post(advance_url(opp), {"stage": "needs", "path": "form"})
    assert response.status_code == 302
    assert response["Location"] == reverse("opportunities:detail", args=[opp.public_id])
    assert stage_of(world.a, opp) == "needs"
    [move] = events(world.a, opp, EventKind.STAGE)
    assert (move.path, move.actor_id) == ("form", world.a.manager.pk)
    # Another page's htmx form: sent to the opportunity's page, or shown what is missing.
    response = en(world.a.manager).post(advance_url(opp), {"stage": "contact"}, **HTMX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("opportunities:detail", args=[opp.public_id])
    assert stage_of(world.a, opp) == "contact"  # back to an earlier stage is free
    response = en(world.a.manager).post(advance_url(opp), {"stage": "demo"}, **HTMX)
    assert response.status_code == 409
    assert 'data-testid="missing"' in response.content.decode()
    # JSON.
    response = en(world.a.manager).post(advance_url(opp), {"stage": "needs"}, **JSON)
    assert response.status_code == 200
    assert response.json() == {
        "opportunity": str(opp.public_id),
        "stage": "needs",
        "probability": 25,
    }


def test_another_tenants_or_another_reps_id_is_404_and_nothing_moves(world, en):
    theirs = make_opportunity(world.b)
    complete(world.b, theirs, "contact")
    response = en(world.a.manager).post(advance_url(theirs), {"stage": "needs"})
    assert response.status_code == 404
    assert stage_of(world.b, theirs) == "contact"

    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    colleagues = make_opportunity(world.a, owner=other_rep)
    complete(world.a, colleagues, "contact")
    for who in (world.a.rep, MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)):
        response = en(who).post(advance_url(colleagues), {"stage": "needs", "path": "drag"}, **HTMX)
        assert response.status_code == 404
    assert stage_of(world.a, colleagues) == "contact"
    unknown = reverse("opportunities:advance", args=[uuid.uuid4()])
    assert en(world.a.manager).post(unknown, {"stage": "needs"}).status_code == 404


def test_an_unknown_stage_is_422_with_the_codes_and_a_closed_one_409(world, en):
    opp = make_opportunity(world.a)
    client = en(world.a.rep)
    response = client.post(advance_url(opp), {"stage": "nowhere", "path": "drag"}, **HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    assert "There is no stage “nowhere”" in body and "needs" in body
    response = client.post(advance_url(opp), {"stage": ""}, **JSON)
    assert response.status_code == 422
    assert "Choose the stage" in response.json()["error"]
    response = client.post(advance_url(opp), {"stage": "needs", "path": "teleport"})
    assert response.status_code == 422
    assert client.get(advance_url(opp)).status_code == 405
    lose(world.a, opp)
    response = client.post(advance_url(opp), {"stage": "needs"})
    assert response.status_code == 409
    assert "no longer moves" in response.content.decode()
    assert stage_of(world.a, opp) == "contact"


# -- many: the bulk move ------------------------------------------------------------------------


def test_a_bulk_move_moves_the_ready_ones_and_lists_the_refused_with_their_missing_items(world, en):
    ready = make_opportunity(world.a, customer_name="甲公司")
    complete(world.a, ready, "contact")
    blocked = make_opportunity(world.a, customer_name="乙公司", product_line="")
    already = make_opportunity(world.a, customer_name="丙公司")
    complete(world.a, already, "contact")
    en(world.a.rep).post(advance_url(already), {"stage": "needs"})
    foreign = make_opportunity(world.b, customer_name="外租户")
    complete(world.b, foreign, "contact")
    lost = make_opportunity(world.a, customer_name="丁公司")
    lose(world.a, lost)

    ids = [ready, blocked, already, foreign, lost]
    response = en(world.a.manager).post(
        BULK,
        {"stage": "needs", "ids": [str(o.public_id) for o in ids] + ["not-a-uuid"]},
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert 'data-testid="moved-item"' in body and ready.name in body
    [refused_html] = body.split('data-testid="refused-item"')[1:]
    assert blocked.name in refused_html
    assert refused_html.count('data-testid="missing-item"') == 3
    assert str(foreign.public_id) in body and "No such opportunity." in body
    assert "no longer moves" in body and "Not an opportunity id." in body
    assert stage_of(world.a, ready) == "needs"
    assert stage_of(world.a, blocked) == "contact"
    assert stage_of(world.b, foreign) == "contact"
    assert [e.path for e in events(world.a, ready, EventKind.STAGE)] == ["bulk"]
    [refused] = events(world.a, blocked, EventKind.REFUSED)
    assert refused.path == "bulk"


def test_a_bulk_move_in_json_and_for_a_rep(world, en):
    own = make_opportunity(world.a, customer_name="甲公司")
    complete(world.a, own, "contact")
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    colleagues = make_opportunity(world.a, customer_name="乙公司", owner=other_rep)
    complete(world.a, colleagues, "contact")
    response = en(world.a.rep).post(
        BULK,
        {"stage": "needs", "ids": [str(own.public_id), str(colleagues.public_id)]},
        **JSON,
    )
    assert response.status_code == 200
    data = response.json()
    assert data["moved"] == [str(own.public_id)]
    assert data["refused"] == []
    assert data["errors"] == [{"id": str(colleagues.public_id), "error": "No such opportunity."}]
    assert stage_of(world.a, colleagues) == "contact"

    blocked = make_opportunity(world.a, customer_name="丙公司")
    response = en(world.a.rep).post(
        BULK, {"stage": "needs", "ids": [str(blocked.public_id)]}, **JSON
    )
    assert response.status_code == 409
    [refusal] = response.json()["refused"]
    assert refusal["opportunity"] == str(blocked.public_id)
    assert {m["kind"] for m in refusal["missing"]} == {"follow_ups", "decision_chain"}


def test_a_bulk_move_needs_a_stage_ids_and_a_writer(world, en):
    opp = make_opportunity(world.a)
    client = en(world.a.manager)
    assert client.post(BULK, {"stage": "nowhere", "ids": [str(opp.public_id)]}).status_code == 422
    assert client.post(BULK, {"stage": "needs"}).status_code == 422
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    response = en(marketing).post(BULK, {"stage": "needs", "ids": [str(opp.public_id)]})
    assert response.status_code == 403
    assert stage_of(world.a, opp) == "contact"


# -- a file: the import -------------------------------------------------------------------------


def upload(text: str, name="moves.csv", encoding="utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


def test_an_import_moves_row_by_row_and_lists_every_row(world, en):
    ready = make_opportunity(world.a, customer_name="甲公司")
    complete(world.a, ready, "contact")
    blocked = make_opportunity(world.a, customer_name="乙公司")
    same = make_opportunity(world.a, customer_name="丙公司")
    foreign = make_opportunity(world.b, customer_name="外租户")
    complete(world.b, foreign, "contact")
    lost = make_opportunity(world.a, customer_name="丁公司")
    lose(world.a, lost)
    wrong = make_opportunity(world.a, customer_name="戊公司")
    text = "\n".join(
        [
            "id,stage,note",
            f"{ready.public_id},needs,ok",
            f"{blocked.public_id},needs,blocked",
            f"{same.public_id},contact,same",
            f"{foreign.public_id},needs,another tenant",
            "12345,needs,not an id",
            f"{uuid.uuid4()},needs,unknown",
            f"{ready.public_id},demo,twice",
            f"{wrong.public_id},somewhere,unknown stage",
            f"{lost.public_id},needs,closed",
            "",
        ]
    )
    response = en(world.a.manager).post(IMPORT, {"file": upload(text)})
    assert response.status_code == 200
    outcome = response.context["outcome"]
    assert [r.line for r in outcome.moved] == [2]
    assert [row.line for row, _refusal in outcome.refused] == [3]
    assert [r.line for r in outcome.unchanged] == [4]
    assert [r.line for r in outcome.errors] == [5, 6, 7, 8, 9, 10]
    assert outcome.total == 9  # every row of the file, once
    errors = {r.line: r.error for r in outcome.errors}
    # Another tenant's id reads as an unknown one.
    assert errors[5].startswith("No such opportunity") and errors[7].startswith("No such opp")
    assert "is not an opportunity id" in errors[6]
    assert "earlier line" in errors[8]
    assert "There is no stage “somewhere”" in errors[9]
    assert "no longer moves" in errors[10]
    body = response.content.decode()
    [refused_html] = body.split('data-testid="refused-row"')[1:]
    assert refused_html.count('data-testid="missing-item"') == 2
    assert stage_of(world.a, ready) == "needs"
    assert stage_of(world.a, blocked) == "contact"
    assert stage_of(world.b, foreign) == "contact"
    assert [e.path for e in events(world.a, ready, EventKind.STAGE)] == ["import"]
    [refused] = events(world.a, blocked, EventKind.REFUSED)
    assert refused.path == "import"


def test_an_exported_csv_with_its_stage_edited_is_an_import_file(world, en):
    opp = make_opportunity(world.a, customer_name="甲公司")
    complete(world.a, opp, "contact")
    client = en(world.a.manager)
    exported = b"".join(
        client.get(reverse("opportunities:list"), {"_export": "csv"}).streaming_content
    ).decode("utf-8")
    edited = exported.replace(",contact,open,", ",needs,open,")
    response = client.post(IMPORT, {"file": upload(edited, encoding="utf-8")})
    assert response.status_code == 200
    assert len(response.context["outcome"].moved) == 1
    assert stage_of(world.a, opp) == "needs"


def test_a_file_that_cannot_be_read_is_refused_whole(world, en):
    opp = make_opportunity(world.a)
    complete(world.a, opp, "contact")
    client = en(world.a.manager)
    for text, error in [
        (f"opportunity,where\n{opp.public_id},needs\n", "must name the columns"),
        ("id,stage\n", "no rows"),
        ("", "empty"),
    ]:
        response = client.post(IMPORT, {"file": upload(text)})
        assert response.status_code == 422, text
        assert error in response.content.decode(), text
    response = client.post(IMPORT, {"file": SimpleUploadedFile("x.xlsx", b"PK\x03\x04garbage")})
    assert response.status_code == 422
    assert 'data-testid="file-error"' in response.content.decode()
    assert client.post(IMPORT, {}).status_code == 422
    assert stage_of(world.a, opp) == "contact"
    # A GBK file (as Excel saves CSV in Chinese Windows) is read.
    response = client.post(
        IMPORT, {"file": upload(f"id,阶段\n{opp.public_id},needs\n", encoding="gb18030")}
    )
    assert response.status_code == 200
    assert stage_of(world.a, opp) == "needs"


def test_the_import_is_for_managers_and_admins(world, en):
    assert en(world.a.rep).get(IMPORT).status_code == 403
    opp = make_opportunity(world.a)
    complete(world.a, opp, "contact")
    response = en(world.a.rep).post(IMPORT, {"file": upload(f"id,stage\n{opp.public_id},needs")})
    assert response.status_code == 403
    assert stage_of(world.a, opp) == "contact"
    response = en(world.a.admin).get(IMPORT)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<code>needs</code>" in body and "需求确认" in body
