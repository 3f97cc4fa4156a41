"""A tenant's pipeline defaults (F21): stages with their required actions, attachment kinds,
decision-chain roles and lost reasons, created the first time the tenant uses
opportunities (as customers.services.presets creates the follow-up lists) and edited in
the admin afterwards."""

from __future__ import annotations

from crm.tenancy import advisory_lock, current_tenant
from customers.models import DecisionRole
from opportunities.models import (
    AttachmentKind,
    Attitude,
    ChainRole,
    FileType,
    LostReason,
    OpportunityField,
    RequirementKind,
    Stage,
    StageRequirement,
)

# code, name, allowed types, size limit (MB), is the signed contract, counts for validity
ATTACHMENT_KINDS = (
    ("requirement", "需求文档", [FileType.PDF, FileType.DOCX], 20, False, True),
    ("competitor", "竞品对比表", [FileType.XLSX, FileType.CSV, FileType.PDF], 10, False, True),
    ("proposal", "技术方案(PDF)", [FileType.PDF], 30, False, False),
    ("quote", "报价单", [FileType.PDF, FileType.XLSX], 10, False, False),
    ("contract", "合同扫描件", [FileType.PDF, FileType.JPEG, FileType.PNG], 30, True, False),
)

# name, decision role, required in a complete chain (the decision-chain water level,
# opportunities.levels): the roles the default stages ask for, a decision maker, the
# purchasing director and the technical evaluator.
CHAIN_ROLES = (
    ("CIO", DecisionRole.DECISION_MAKER, True),
    ("总经理", DecisionRole.DECISION_MAKER, False),
    ("采购总监", DecisionRole.PURCHASING, True),
    ("使用部门负责人", DecisionRole.USER, False),
    ("财务", DecisionRole.FINANCE, False),
    ("技术评估", DecisionRole.TECHNICAL, True),
)

LOST_REASONS = (
    ("CTO否决技术架构", False),
    ("法务卡在数据主权条款", False),
    ("预算冻结", False),
    ("选择竞品", True),
    ("项目取消或延期超过一年", False),
    ("价格超出审批权限", False),
)

A, F, Q, C, D = (
    RequirementKind.ATTACHMENT,
    RequirementKind.FOLLOW_UPS,
    RequirementKind.QUESTION,
    RequirementKind.DECISION_CHAIN,
    RequirementKind.FIELD,
)

# code, name, default probability, days to stall, required actions (kind, parameters)
STAGES = (
    (
        "contact",
        "初步接触",
        10,
        14,
        (
            (D, {"field": OpportunityField.PRODUCT_LINE}),
            (F, {"count": 1}),
            (C, {"count": 1}),
        ),
    ),
    (
        "needs",
        "需求确认",
        25,
        21,
        (
            (A, {"attachment_kind": "requirement"}),
            (D, {"field": OpportunityField.BUDGET_BAND}),
            (C, {"count": 1, "decision_role": DecisionRole.TECHNICAL}),
            (F, {"count": 2}),
        ),
    ),
    (
        "demo",
        "方案演示",
        45,
        21,
        (
            (A, {"attachment_kind": "proposal"}),
            (Q, {}),
            (F, {"count": 1, "talk_tag": "技术疑虑"}),
            (C, {"count": 1, "decision_role": DecisionRole.DECISION_MAKER}),
        ),
    ),
    (
        "negotiation",
        "商务谈判",
        70,
        30,
        (
            (A, {"attachment_kind": "quote"}),
            (D, {"field": OpportunityField.AMOUNT}),
            (D, {"field": OpportunityField.EXPECTED_CLOSE}),
            (
                C,
                {
                    "count": 1,
                    "decision_role": DecisionRole.DECISION_MAKER,
                    "attitude": Attitude.SUPPORT,
                },
            ),
        ),
    ),
    (
        "contract",
        "合同签署",
        90,
        14,
        (
            (A, {"attachment_kind": "contract"}),
            (C, {"count": 1, "decision_role": DecisionRole.PURCHASING}),
            (F, {"count": 1, "talk_tag": "已达成共识"}),
        ),
    ),
)


def ensure_defaults(tenant=None) -> None:
    """Create the current tenant's pipeline defaults unless it has stages already (once,
    under a lock: two first requests at once create them once)."""
    tenant = tenant or current_tenant()
    if Stage.objects.exists():
        return
    advisory_lock("opportunities.setup", tenant.pk)
    if Stage.objects.exists():
        return
    kinds = {}
    for i, (code, name, types, size, contract, validity) in enumerate(ATTACHMENT_KINDS, 1):
        kinds[code] = AttachmentKind.objects.create(
            tenant=tenant,
            code=code,
            name=name,
            allowed_types=[str(t) for t in types],
            max_size_mb=size,
            is_contract=contract,
            counts_for_validity=validity,
            position=i * 10,
        )
    ChainRole.objects.bulk_create(
        ChainRole(tenant=tenant, name=name, decision_role=role, required=required, position=i * 10)
        for i, (name, role, required) in enumerate(CHAIN_ROLES, 1)
    )
    LostReason.objects.bulk_create(
        LostReason(tenant=tenant, name=name, needs_detail=detail, position=i * 10)
        for i, (name, detail) in enumerate(LOST_REASONS, 1)
    )
    for i, (code, name, probability, stall, requirements) in enumerate(STAGES, 1):
        stage = Stage.objects.create(
            tenant=tenant,
            code=code,
            name=name,
            position=i * 10,
            default_probability=probability,
            days_to_stall=stall,
        )
        for j, (kind, params) in enumerate(requirements, 1):
            params = dict(params)
            if "attachment_kind" in params:
                params["attachment_kind"] = kinds[params["attachment_kind"]]
            StageRequirement.objects.create(
                tenant=tenant, stage=stage, kind=kind, position=j * 10, **params
            )
