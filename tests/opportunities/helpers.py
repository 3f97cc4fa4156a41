"""Building opportunities and their evidence on real rows, for the opportunities tests.

Every helper runs inside the opportunity's tenant (`tenant_context`) and goes through the
services, as the pages do."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm.tenancy import tenant_context
from customers import services as customer_services
from customers.models import Customer, PresetKind
from opportunities import services
from opportunities.models import (
    AttachmentKind,
    Attitude,
    ChainRole,
    Opportunity,
    Stage,
    StageRequirement,
)
from opportunities.setup import ensure_defaults

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def pdf(name="proposal.pdf", body=PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body, content_type="application/pdf")


def ooxml(kind="xl", name="table.xlsx") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{kind}/workbook.xml", "<workbook/>")
    return SimpleUploadedFile(name, buffer.getvalue())


def make_customer(side, name="恒力液压", owner=None) -> Customer:
    with tenant_context(side.tenant):
        return Customer.objects.create(tenant=side.tenant, name=name, owner=owner or side.rep)


def make_opportunity(side, *, customer=None, owner=None, **fields) -> Opportunity:
    """An open opportunity in the first stage, owned by the side's rep."""
    with tenant_context(side.tenant):
        customer = customer or make_customer(side, name=fields.pop("customer_name", "恒力液压"))
        fields.setdefault("product_line", "液压机")
        return services.opportunity_create(
            tenant=side.tenant,
            acting_member=owner or side.rep,
            customer=customer,
            owner=owner or side.rep,
            **fields,
        )


def stage(side, code) -> Stage:
    with tenant_context(side.tenant):
        ensure_defaults()
        return Stage.objects.get(code=code)


def log_follow_up(side, opportunity, *, by=None, channel="phone", talk_tags=(), roles=(), at=None):
    with tenant_context(side.tenant):
        action = customer_services.presets(PresetKind.ACTION).first()
        interaction = customer_services.interaction_log(
            tenant=side.tenant,
            acting_member=by or opportunity.owner,
            customer=opportunity.customer,
            channel=channel,
            talk_tags=list(talk_tags),
            pains=[],
            roles=list(roles),
            note="跟进",
            next_action=action,
            next_action_due=timezone.localdate(),
        )
        if at is not None:
            type(interaction).objects.filter(pk=interaction.pk).update(at=at)
        return interaction


def attach(side, opportunity, code, upload=None, *, effective=False, by=None):
    with tenant_context(side.tenant):
        kind = AttachmentKind.objects.get(code=code)
        if upload is None:
            upload = (
                ooxml()
                if "xlsx" in kind.allowed_types and "pdf" not in kind.allowed_types
                else pdf()
            )
        return services.attachment_add(
            tenant=side.tenant,
            acting_member=by or opportunity.owner,
            opportunity=opportunity,
            kind=kind,
            upload=upload,
            effective=effective,
        )


def map_member(
    side, opportunity, role_name, *, attitude=Attitude.SUPPORT, name="", influence="high"
):
    with tenant_context(side.tenant):
        role = ChainRole.objects.get(name=role_name)
        return services.chain_member_add(
            tenant=side.tenant,
            acting_member=opportunity.owner,
            opportunity=opportunity,
            role=role,
            contact_name=name or f"{role_name}联系人",
            attitude=attitude,
            influence=influence,
        )


def complete(side, opportunity, code) -> None:
    """Do every required action of the stage `code` (as the defaults define them)."""
    with tenant_context(side.tenant):
        reqs = list(
            StageRequirement.objects.filter(stage__code=code).select_related("attachment_kind")
        )
        opportunity.refresh_from_db()
    for req in reqs:
        if req.kind == "attachment":
            attach(
                side,
                opportunity,
                req.attachment_kind.code,
                effective=req.attachment_kind.is_contract,
            )
        elif req.kind == "follow_ups":
            for _ in range(req.count or 1):
                log_follow_up(
                    side, opportunity, talk_tags=[req.talk_tag] if req.talk_tag else ["技术疑虑"]
                )
        elif req.kind == "question":
            with tenant_context(side.tenant):
                services.question_mark(
                    tenant=side.tenant,
                    acting_member=opportunity.owner,
                    opportunity=opportunity,
                    text="是否兼容现有 PLC?",
                )
        elif req.kind == "decision_chain":
            with tenant_context(side.tenant):
                role = ChainRole.objects.filter(
                    **({"decision_role": req.decision_role} if req.decision_role else {})
                ).first()
            for i in range(req.count or 1):
                map_member(
                    side,
                    opportunity,
                    role.name,
                    attitude=req.attitude or Attitude.SUPPORT,
                    name=f"{role.name}{i}{req.pk}",
                )
        elif req.kind == "field":
            value = {
                "amount": Decimal("480000"),
                "budget_band": "100k_500k",
                "expected_close": date.today().replace(day=1),
                "product_line": "液压机",
            }.get(req.field)
            if value is None:
                continue
            with tenant_context(side.tenant):
                opportunity.refresh_from_db()
                services.opportunity_update(
                    tenant=side.tenant,
                    acting_member=opportunity.owner,
                    opportunity=opportunity,
                    changes={req.field: value},
                )
    with tenant_context(side.tenant):
        opportunity.refresh_from_db()
