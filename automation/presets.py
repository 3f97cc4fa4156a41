"""The rules the briefs asked for, ready to review, dry-run and switch on: added off, once
per tenant (by name), from the rules' admin page. One is on for every tenant from the
start: "a customer entered the risk list → retention task" (`risk_rule_ensure`: the data
migration, each new tenant, the demo), the only way a stay gets its task."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from automation.models import Action, Rule
from crm.audit import audit
from crm.models import Membership, Role, Tenant
from crm.services import actor_user, check_tenant


def presets() -> list[dict]:
    """The presets' fields, named in the active language."""
    return [
        {
            "name": _("Same model asked about 3 times in 30 days → the planner"),
            "trigger": "ticket.opened",
            "condition": 'product_model != ""',
            "count_at_least": 3,
            "count_days": 30,
            "count_same": "product_model",
            "action": Action.NOTIFY,
            "to_role": Role.MANAGER,
            "message": _("A customer asked about the same model 3 times: suggest a trial batch."),
        },
        {
            "name": _("No follow-up 72 h after a lead is assigned → task for the owner"),
            "trigger": "lead.assigned",
            "wait_hours": 72,
            "unless_kind": "followup.logged",
            "action": Action.TASK,
            "to_owner": True,
            "to_role": Role.MANAGER,
            "message": _("No follow-up 72 hours after assignment: contact the lead."),
        },
        {
            "name": _("A-class lead unverified after 12 h → the manager"),
            "trigger": "lead.assigned",
            "condition": 'source_grade == "A"',
            "wait_hours": 12,
            "unless_kind": "lead.verified",
            "action": Action.NOTIFY,
            "to_role": Role.MANAGER,
            "message": _("An A-class lead is still unverified 12 hours after assignment."),
        },
        {
            "name": _("A key contact changed jobs → relationship task"),
            "trigger": "contact.changed_jobs",
            "condition": 'role != ""',
            "action": Action.TASK,
            "to_owner": True,
            "message": _(
                "A key contact changed jobs: keep in touch at the new company and meet "
                "the successor."
            ),
        },
        risk_preset(),
    ]


# Customer health's rule action (health.risk.RETENTION_ACTION, registered by health).
RETENTION_ACTION = "retention_task"
RISK_TRIGGER = "health.risk_entered"


def risk_preset() -> dict:
    """The rule that gives a new stay on the risk list its retention task (the playbook
    step, on the owner's board) and tells the owner: on for every tenant."""
    return {
        "name": _("Customer entered the risk list → retention task"),
        "trigger": RISK_TRIGGER,
        "action": RETENTION_ACTION,
        "to_owner": True,
        "message": "",
    }


def risk_rule_ensure(tenant: Tenant) -> Rule | None:
    """Inside `tenant`: add the risk preset, switched on, unless the tenant has a rule with
    its trigger and action already (a new tenant, the demo). The rule added, else None."""
    if Rule.objects.filter(trigger=RISK_TRIGGER, action=RETENTION_ACTION).exists():
        return None
    with translation.override(settings.LANGUAGE_CODE):
        rule = Rule(tenant=tenant, is_active=True, **risk_preset())
    rule.full_clean()
    rule.save()
    return rule


def _have(fields: dict, names: set[str], doing: set[tuple]) -> bool:
    """The tenant has this preset: by name; the risk preset also by its trigger and action
    (named in another language when it was added)."""
    if fields["action"] == RETENTION_ACTION:
        return (fields["trigger"], fields["action"]) in doing
    return fields["name"] in names


def presets_add(*, tenant: Tenant, acting_member: Membership | None) -> list[Rule]:
    """Add the presets the tenant does not have yet (`_have`), switched off. The new ones."""
    check_tenant(tenant, acting_member)
    added = []
    with transaction.atomic():
        names = set(Rule.objects.values_list("name", flat=True))
        doing = set(Rule.objects.values_list("trigger", "action"))
        for fields in presets():
            if _have(fields, names, doing):
                continue
            rule = Rule(tenant=tenant, is_active=False, **fields)
            rule.full_clean()
            rule.save()
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="automation.preset_added",
                obj=rule,
            )
            added.append(rule)
    return added
