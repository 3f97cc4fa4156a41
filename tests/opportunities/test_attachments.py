"""Attachments over HTTP: uploaded through the page (the type read from the bytes, the size
limit per kind, field errors as 422 with nothing stored), downloaded only through the
view (the original name, nosniff, never cached), never by a service agent for a signed
contract, never across tenants; a contract marked 已生效."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from opportunities.models import Attachment, AttachmentKind, Opportunity
from tests.factories import MembershipFactory
from tests.opportunities.helpers import PDF, PNG, attach, make_opportunity, pdf

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def stored(tmp_path, monkeypatch) -> Path:
    """Where the uploaded files go in these tests: a temporary directory."""
    from django.core.files.storage import FileSystemStorage

    monkeypatch.setattr(
        Attachment._meta.get_field("file"), "storage", FileSystemStorage(location=tmp_path)
    )
    return tmp_path


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _attach_url(opp):
    return reverse("opportunities:attach", args=[opp.public_id])


def _download_url(opp, attachment):
    return reverse("opportunities:attachment", args=[opp.public_id, attachment.public_id])


def test_attachments_have_a_storage_of_their_own(settings):
    """settings.STORAGES["attachments"], in the media directory by default (the media
    volume), configurable by ATTACHMENTS_DIR; the model's field uses it."""
    from crm.embedded import var_dir
    from opportunities.models import attachment_storage

    location = settings.STORAGES["attachments"]["OPTIONS"]["location"]
    assert location == str(settings.ATTACHMENTS_DIR)
    if "ATTACHMENTS_DIR" not in os.environ:
        assert Path(location) == var_dir() / "media" / "attachments"
    assert attachment_storage().location == str(Path(location).resolve())
    assert Attachment._meta.get_field("file")._storage_callable is attachment_storage


def test_a_pdf_is_uploaded_with_htmx_and_the_section_comes_back(world, en, stored):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(
        _attach_url(opp),
        {"kind": "proposal", "file": pdf("技术方案.pdf")},
        headers={**HX, "HX-Target": "attachments"},
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "opportunityChanged"
    html = response.content.decode()
    assert 'id="attachments"' in html and "技术方案.pdf" in html
    with tenant_context(world.a.tenant):
        found = Attachment.objects.get(opportunity=opp)
        assert (found.kind.code, found.file_type, found.size) == ("proposal", "pdf", len(PDF))
        assert found.uploaded_by_id == world.a.rep.pk
    # Stored under an unguessable name in the attachments' storage, not the original name.
    (path,) = _files(stored)
    assert path.read_bytes() == PDF
    assert "技术方案" not in str(path)


def test_a_plain_upload_redirects_to_the_section(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(_attach_url(opp), {"kind": "proposal", "file": pdf()})
    assert response.status_code == 302
    assert response["Location"].endswith("#attachments")


def test_a_requirement_document_makes_the_evidence_check(world, en):
    opp = make_opportunity(world.a)
    en(world.a.rep).post(_attach_url(opp), {"kind": "requirement", "file": pdf("需求.pdf")})
    with tenant_context(world.a.tenant):
        assert Opportunity.objects.get(pk=opp.pk).evidence_at is not None


def test_a_file_of_the_wrong_type_is_a_field_error_and_nothing_is_stored(world, en, stored):
    opp = make_opportunity(world.a)
    fake = SimpleUploadedFile("方案.pdf", PNG, content_type="application/pdf")
    response = en(world.a.rep).post(
        _attach_url(opp), {"kind": "proposal", "file": fake}, headers=HX
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-file"' in html
    assert "its contents were read" in html
    # The kind stays chosen for the next try.
    assert '<option value="proposal" selected>' in html
    with tenant_context(world.a.tenant):
        assert not Attachment.objects.filter(opportunity=opp).exists()
    assert _files(stored) == []


def test_a_file_too_large_for_its_kind_is_a_field_error(world, en, stored):
    opp = make_opportunity(world.a)
    with tenant_context(world.a.tenant):
        AttachmentKind.objects.filter(code="proposal").update(max_size_mb=1)
    big = pdf("大.pdf", PDF + b"0" * (1024 * 1024))
    response = en(world.a.rep).post(_attach_url(opp), {"kind": "proposal", "file": big})
    assert response.status_code == 422  # a plain post: the whole page, with the error
    html = response.content.decode()
    assert "takes at most 1 MB" in html
    assert 'data-testid="error-file"' in html
    assert _files(stored) == []


def test_a_missing_kind_or_file_is_a_field_error(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(_attach_url(opp), {"kind": ""}, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-kind"' in html and 'data-testid="error-file"' in html
    response = en(world.a.rep).post(
        _attach_url(opp), {"kind": "nonsense", "file": pdf()}, headers=HX
    )
    assert response.status_code == 422


def test_the_download_sends_the_file_as_an_attachment_never_cached(world, en):
    opp = make_opportunity(world.a)
    found = attach(world.a, opp, "proposal", pdf("技术方案 v2.pdf"))
    response = en(world.a.rep).get(_download_url(opp, found))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "v2.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_service_agent_downloads_a_proposal_but_never_a_contract(world, en):
    opp = make_opportunity(world.a)
    proposal = attach(world.a, opp, "proposal")
    contract = attach(world.a, opp, "contract", pdf("合同.pdf"))
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    client = en(agent)
    assert client.get(_download_url(opp, proposal)).status_code == 200
    assert client.get(_download_url(opp, contract)).status_code == 404
    html = client.get(reverse("opportunities:detail", args=[opp.public_id])).content.decode()
    assert _download_url(opp, proposal) in html
    assert _download_url(opp, contract) not in html
    assert en(world.a.manager).get(_download_url(opp, contract)).status_code == 200


def test_another_tenants_attachment_is_404_whichever_way_it_is_asked(world, en):
    theirs = make_opportunity(world.b)
    their_file = attach(world.b, theirs, "proposal")
    mine = make_opportunity(world.a)
    client = en(world.a.manager)
    assert client.get(_download_url(theirs, their_file)).status_code == 404
    # Their attachment's id under my opportunity: not one of its attachments.
    assert client.get(_download_url(mine, their_file)).status_code == 404
    effective = reverse(
        "opportunities:attachment_effective", args=[mine.public_id, their_file.public_id]
    )
    assert client.post(effective).status_code == 404
    assert client.post(_attach_url(theirs), {"kind": "proposal", "file": pdf()}).status_code == 404


def test_another_reps_attachment_is_404(world, en):
    colleague = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    theirs = make_opportunity(world.a, owner=colleague)
    found = attach(world.a, theirs, "proposal")
    assert en(world.a.rep).get(_download_url(theirs, found)).status_code == 404


def test_a_contract_is_marked_effective_and_only_a_contract(world, en):
    opp = make_opportunity(world.a)
    contract = attach(world.a, opp, "contract", pdf("合同.pdf"))
    proposal = attach(world.a, opp, "proposal")
    client = en(world.a.rep)

    def mark(found):
        url = reverse("opportunities:attachment_effective", args=[opp.public_id, found.public_id])
        return client.post(url, headers={**HX, "HX-Target": "attachments"})

    response = mark(proposal)
    assert response.status_code == 409
    assert "Only a signed contract" in response.content.decode()
    response = mark(contract)
    assert response.status_code == 200
    assert 'data-testid="attachment-effective"' in response.content.decode()
    with tenant_context(world.a.tenant):
        contract.refresh_from_db()
        assert contract.status == "effective"


def test_a_contract_uploaded_as_effective(world, en):
    opp = make_opportunity(world.a)
    response = en(world.a.rep).post(
        _attach_url(opp), {"kind": "contract", "file": pdf("合同.pdf"), "effective": "on"}
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        assert Attachment.objects.get(opportunity=opp).status == "effective"
    # Only a contract takes the status: on another kind it is a field error.
    response = en(world.a.rep).post(
        _attach_url(opp), {"kind": "proposal", "file": pdf(), "effective": "on"}, headers=HX
    )
    assert response.status_code == 422
    assert 'data-testid="error-effective"' in response.content.decode()
