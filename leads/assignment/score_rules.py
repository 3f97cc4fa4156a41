"""The lead score's lines of a draft policy, saved from the policy's admin page with their
audit row (crm.services' contract)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from leads.models import AssignmentPolicy, ScoreRule


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
