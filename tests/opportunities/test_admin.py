"""The pipeline's data in the admin: stages with 3–5 typed required actions, each kind's
parameters checked; opportunities read only (they move through the stage checks)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.tenancy import tenant_context
from opportunities.models import AttachmentKind, Stage, StageRequirement
from tests.opportunities.helpers import make_opportunity, stage

pytestmark = pytest.mark.django_db


def _form(stage_obj, rows):
    data = {
        "code": stage_obj.code,
        "name": stage_obj.name,
        "position": stage_obj.position,
        "default_probability": stage_obj.default_probability,
        "days_to_stall": stage_obj.days_to_stall,
        "is_active": "on",
        "requirements-TOTAL_FORMS": str(len(rows)),
        "requirements-INITIAL_FORMS": "0",
        "requirements-MIN_NUM_FORMS": "0",
        "requirements-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in {"position": i, **row}.items():
            data[f"requirements-{i}-{key}"] = value
    return data


def _fresh_stage(side):
    stage(side, "contact")  # the defaults
    with tenant_context(side.tenant):
        return Stage.objects.create(
            tenant=side.tenant, code="trial", name="试用", position=25, default_probability=35
        )


def test_a_stage_needs_three_to_five_required_actions(world, en):
    trial = _fresh_stage(world.a)
    url = reverse("admin:opportunities_stage_change", args=[trial.pk])
    rows = [{"kind": "question"}, {"kind": "field", "field": "amount"}]
    response = en(world.a.admin).post(url, _form(trial, rows))
    assert response.status_code == 200
    assert "A stage has 3 to 5 required actions; this one has 2." in response.content.decode()
    with tenant_context(world.a.tenant):
        assert not StageRequirement.objects.filter(stage=trial).exists()


def test_each_kind_takes_its_parameters_only(world, en):
    trial = _fresh_stage(world.a)
    url = reverse("admin:opportunities_stage_change", args=[trial.pk])
    rows = [
        {"kind": "attachment"},  # no kind of attachment named
        {"kind": "follow_ups", "count": "2", "field": "amount"},  # a field it does not take
        {"kind": "question"},
    ]
    body = en(world.a.admin).post(url, _form(trial, rows)).content.decode()
    assert "This kind of action needs it." in body
    assert "Not used by this kind of action: leave it empty." in body
    with tenant_context(world.a.tenant):
        proposal = AttachmentKind.objects.get(code="proposal")
    rows = [
        {"kind": "attachment", "attachment_kind": str(proposal.pk)},
        {"kind": "follow_ups", "count": "2", "talk_tag": "技术疑虑"},
        {"kind": "decision_chain", "count": "1", "decision_role": "finance", "attitude": "support"},
    ]
    response = en(world.a.admin).post(url, _form(trial, rows))
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        labels = [str(r) for r in StageRequirement.objects.filter(stage=trial).order_by("position")]
    assert labels == [
        "技术方案(PDF) attached",
        "2 follow-up(s) tagged “技术疑虑”",
        "Finance mapped who supports",
    ]


def test_another_tenants_attachment_kind_is_not_offered(world, en):
    trial = _fresh_stage(world.a)
    stage(world.b, "contact")
    with tenant_context(world.b.tenant):
        foreign = AttachmentKind.objects.get(code="proposal")
    rows = [
        {"kind": "attachment", "attachment_kind": str(foreign.pk)},
        {"kind": "question"},
        {"kind": "field", "field": "amount"},
    ]
    url = reverse("admin:opportunities_stage_change", args=[trial.pk])
    response = en(world.a.admin).post(url, _form(trial, rows))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_opportunities_are_read_only_in_the_admin(world, en):
    opp = make_opportunity(world.a)
    client = en(world.a.admin)
    url = reverse("admin:opportunities_opportunity_change", args=[opp.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "改名", "stage": stage(world.a, "contract").pk})
    assert response.status_code == 403
    with tenant_context(world.a.tenant):
        opp.refresh_from_db()
        assert opp.stage.code == "contact"
