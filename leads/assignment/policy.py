"""Assignment policies (F8, F14): the versions that decide, the one draft, publishing.

A published version never changes: `policy_publish()` copies the draft's parameters and
score rules into the next version, and the decisions made under it keep pointing at it.
Version 1, with the defaults below, is created on the tenant's first dispatch.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from crm.tenancy import NoTenantError, advisory_lock, current_tenant
from leads.assignment.engine import Params
from leads.assignment.scoring import CompiledRule, compile_rules, rule_errors
from leads.models import AssignmentPolicy, Channel, PolicyStatus, ScoreRule

DEFAULT_RULES = (
    # The briefs' examples (F8): website +30, budget > 500k +25, "立即报价" +20, late −15.
    {"label": "官网来源", "operator": "channel_is", "value": "官网表单", "points": 30},
    {"label": "预算 > 50 万", "field": "budget", "operator": "gt", "value": "500000", "points": 25},
    {
        "label": "含“立即报价”",
        "field": "message",
        "operator": "contains",
        "value": "立即报价",
        "points": 20,
    },
    {
        "label": "首次响应超 2 小时",
        "operator": "late_first_response",
        "value": "120",
        "points": -15,
    },
    {"label": "A 类来源", "operator": "grade_is", "value": "A", "points": 10},
)


def policy_active() -> AssignmentPolicy:
    """The published version that decides now; version 1 with the defaults if none yet."""
    tenant = current_tenant()
    if not isinstance(tenant, Tenant):
        # All-tenants mode (the platform superuser) has no single policy to read or make.
        raise NoTenantError("policy_active() runs inside one tenant")
    policy = (
        AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-version").first()
    )
    if policy is not None:
        return policy
    advisory_lock("policy", tenant.pk)
    policy = AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).first()
    if policy is None:
        policy = AssignmentPolicy.objects.create(
            tenant=tenant,
            status=PolicyStatus.PUBLISHED,
            version=1,
            note="默认策略",
            published_at=timezone.now(),
        )
        _copy_default_rules(policy)
    return policy


def policy_published() -> AssignmentPolicy | None:
    """The published version that decides now, or None before the first lead: read
    without creating anything (pages use it; `policy_active()` creates version 1)."""
    return (
        AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-version").first()
    )


def active_params() -> Params:
    """`policy_published()`'s parameters, the defaults when there is none yet."""
    policy = policy_published()
    return Params.of(policy) if policy is not None else Params()


def _copy_default_rules(policy: AssignmentPolicy) -> None:
    names = set(Channel.objects.values_list("name", flat=True))
    rules = []
    for position, spec in enumerate(DEFAULT_RULES):
        if spec["operator"] == "channel_is" and spec["value"] not in names:
            continue
        if rule_errors(spec.get("field", ""), spec["operator"], spec["value"]):
            continue
        rules.append(ScoreRule(tenant=policy.tenant, policy=policy, position=position, **spec))
    ScoreRule.objects.bulk_create(rules)


_compiled: dict = {}  # public_id (never reused, unlike a pk) → compiled rules


def policy_rules(policy: AssignmentPolicy) -> list[CompiledRule]:
    """A policy's compiled rules. Published versions never change, so each worker
    compiles a version once; a draft is compiled afresh every time."""
    if policy.is_draft:
        return compile_rules(policy.rules.all())
    rules = _compiled.get(policy.public_id)
    if rules is None:
        if len(_compiled) > 256:
            _compiled.clear()
        rules = _compiled[policy.public_id] = compile_rules(policy.rules.all())
    return rules


def policy_draft(*, tenant: Tenant, acting_member: Membership | None) -> AssignmentPolicy:
    """The tenant's one draft, created (by `acting_member`) as a copy of the active version
    with its score lines when missing."""
    check_tenant(tenant, acting_member)
    draft = AssignmentPolicy.objects.filter(status=PolicyStatus.DRAFT).first()
    if draft is not None:
        return draft
    with transaction.atomic():
        active = policy_active()
        draft = AssignmentPolicy(
            tenant=tenant, status=PolicyStatus.DRAFT, created_by=actor_user(acting_member)
        )
        for name in AssignmentPolicy.PARAMETERS:
            setattr(draft, name, getattr(active, name))
        draft.save()
        _copy_rules(active, draft)
    return draft


def _copy_rules(source: AssignmentPolicy, target: AssignmentPolicy) -> None:
    ScoreRule.objects.bulk_create(
        ScoreRule(
            tenant=target.tenant,
            policy=target,
            label=r.label,
            field=r.field,
            operator=r.operator,
            value=r.value,
            points=r.points,
            position=r.position,
        )
        for r in source.rules.all()
    )


def policy_publish(
    *, tenant: Tenant, acting_member: Membership | None, draft: AssignmentPolicy, note: str = ""
) -> AssignmentPolicy:
    """Publish the draft as the next immutable version; the draft stays for further edits.
    Audited, with what changed against the version active until now."""
    check_tenant(tenant, draft, acting_member)
    if not draft.is_draft:
        raise ValueError("only a draft can be published")
    user = actor_user(acting_member)
    with transaction.atomic():
        advisory_lock("policy", tenant.pk)
        active = policy_active()
        last = AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-version")
        version = (last.values_list("version", flat=True).first() or 0) + 1
        published = AssignmentPolicy(
            tenant=tenant,
            status=PolicyStatus.PUBLISHED,
            version=version,
            note=note or draft.note,
            created_by=user,
            published_at=timezone.now(),
        )
        for name in AssignmentPolicy.PARAMETERS:
            setattr(published, name, getattr(draft, name))
        published.save()
        _copy_rules(draft, published)
        changes = {
            name: [getattr(active, name), getattr(published, name)]
            for name in AssignmentPolicy.PARAMETERS
            if getattr(active, name) != getattr(published, name)
        }
        before = sorted(str(r) + f" {r.points:+d}" for r in active.rules.all())
        after = sorted(str(r) + f" {r.points:+d}" for r in published.rules.all())
        if before != after:
            changes["rules"] = [before, after]
        audit(
            tenant=tenant,
            actor=user,
            action="assignment.policy_published",
            obj=published,
            changes=changes,
        )
    return published


# -- the score lines of a draft, saved from the policy's admin page -------------------------


def rule_lines(policy: AssignmentPolicy) -> list[str]:
    """The policy's score lines as the audit trail shows them."""
    return [f"{r} {r.points:+d}" for r in policy.rules.order_by("position", "id")]


def score_rules_save(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    policy: AssignmentPolicy,
    rules: Iterable[ScoreRule],
    deleted: Iterable[ScoreRule] = (),
) -> bool:
    """Save `rules` (new or changed lines, validated) as `policy`'s and delete `deleted`;
    the policy's audit trail gets the lines before and after. Returns whether they
    changed."""
    rules, deleted = list(rules), list(deleted)
    check_tenant(tenant, acting_member, policy, *deleted, *(r for r in rules if r.pk))
    with transaction.atomic():
        before = rule_lines(policy)
        for rule in deleted:
            rule.delete()
        for rule in rules:
            rule.tenant = tenant
            rule.policy = policy
            rule.save()
        after = rule_lines(policy)
        if before == after:
            return False
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="admin.change",
            obj=policy,
            changes={"rules": [before, after]},
        )
    return True
