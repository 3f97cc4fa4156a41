"""Rules, events and the drain on real rows, for the automation tests."""

from __future__ import annotations

from automation.models import Rule, Run
from automation.runlog import history
from crm import events
from crm.tenancy import tenant_context
from tests.service_feedback.helpers import customer_with_contact, upsert


def rule(side, **fields) -> Rule:
    fields.setdefault("name", "同型号三次")
    fields.setdefault("trigger", "ticket.opened")
    fields.setdefault("action", "notify")
    fields.setdefault("is_active", True)
    with tenant_context(side.tenant):
        return Rule.objects.create(tenant=side.tenant, **fields)


def enquiry(side, number: int, model="DN50", phone="13800138000"):
    """A ticket received from the side's customer (its `ticket.opened` event)."""
    return upsert(side, f"T-{number}", phone=phone, product_model=model, status="open")[0]


def customer(side, name="恒力液压", phone="13800138000"):
    return customer_with_contact(side, name, phone=phone)


def drain(side) -> int:
    """Process the side's outbox until it is empty (as crm.events_process does): the
    events a rule's action emits are handed over in the next batch."""
    done = 0
    with tenant_context(side.tenant):
        while batch := events.process_pending():
            done += batch
    return done


def runs(side, r: Rule) -> list[Run]:
    """The rule's run log, oldest first: its runs and its "condition false" entries."""
    with tenant_context(side.tenant):
        return history(r)


def outcomes(side, r: Rule) -> list[str]:
    return [run.outcome for run in runs(side, r)]
