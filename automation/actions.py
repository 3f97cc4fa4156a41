"""What a rule does when it fires: notify, a task on a board, set the customer's level,
queue a webhook call (sent after the commit, automation.webhooks), or an action an app
offers (crm.events.register_action). Each raises ActionError with a readable reason when
it cannot act; the engine runs it in a savepoint, so a failed action leaves nothing
half-done. A drained batch does notify, task and webhook for all its firings at once
(automation.engine); set level and the apps' actions one by one, as here."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from automation import webhooks
from automation.models import Action, Rule, Task
from crm.events import ActionFailed, caused_by, get_action
from crm.models import Membership, OutboxEvent
from crm.notify import notify
from crm.notify_adapters import DeliveryError
from customers.models import Customer
from customers.services import customer_set_level

FIRED_EVENT = "automation.rule_fired"
# The webhook's signature (computed when a call is sent, automation.webhooks).
signature = webhooks.signature


class ActionError(Exception):
    """The action could not be done; `str()` says why."""


def recipients(rule: Rule, data: dict) -> list[Membership]:
    """The members a notify or task action is for: the event's owner, a role, a member."""
    members = Membership.objects.in_tenant(rule.tenant_id).active().select_related("user")
    chosen: dict[int, Membership] = {}
    if rule.to_owner and data.get("owner_id"):
        chosen.update((m.pk, m) for m in members.filter(pk=data["owner_id"]))
    if rule.to_role:
        chosen.update((m.pk, m) for m in members.filter(role=rule.to_role))
    if rule.to_member_id:
        chosen.update((m.pk, m) for m in members.filter(pk=rule.to_member_id))
    return sorted(chosen.values(), key=lambda m: m.pk)


def customer_id(subject_key: str) -> int | None:
    """The customer an event's key names ("customer:42"), else None."""
    prefix, _sep, pk = subject_key.partition(":")
    return int(pk) if prefix == "customer" and pk.isdigit() else None


def text(rule: Rule) -> str:
    return rule.message or rule.name


def run(rule: Rule, event: OutboxEvent, subject: str) -> str:
    """Do `rule`'s action for `event`; a short detail for the run log."""
    if rule.action in (Action.NOTIFY, Action.TASK):
        members = recipients(rule, event.data)
        if not members:
            raise ActionError(_("Nobody to send it to (no active member matches)."))
        if rule.action == Action.NOTIFY:
            notify(
                event=FIRED_EVENT,
                recipients=members,
                params={"rule": rule.name, "message": text(rule), "subject": subject},
            )
        else:
            Task.objects.bulk_create(
                Task(
                    tenant_id=rule.tenant_id,
                    rule=rule,
                    assignee=m,
                    title=text(rule)[:200],
                    subject=subject,
                )
                for m in members
            )
        return ", ".join(m.display_name for m in members)[:500]
    if rule.action == Action.SET_LEVEL:
        pk = customer_id(event.key)
        customer = Customer.objects.filter(pk=pk).first() if pk else None
        if customer is None:
            raise ActionError(_("The event names no customer."))
        try:
            with caused_by(rule.pk, event.depth + 1):
                changed = customer_set_level(
                    tenant=customer.tenant, acting_member=None, customer=customer, level=rule.level
                )
        except ValidationError as exc:
            raise ActionError("; ".join(exc.messages)) from None
        return (
            f"{customer.name}: {rule.level}"
            if changed
            else _("level already %(level)s") % {"level": rule.level}
        )
    offered = get_action(rule.action)
    if offered is not None:
        # An app's action (crm.events.register_action), e.g. health's retention task.
        if event.kind not in offered.kinds:
            raise ActionError(_("This action is for other events."))
        try:
            with caused_by(rule.pk, event.depth + 1):
                return offered.run(event)[:500]
        except ActionFailed as exc:
            raise ActionError(str(exc)) from None
    if rule.action == Action.WEBHOOK:
        return call_webhook(rule, event, subject)
    raise ActionError(_("Unknown action %(action)s.") % {"action": rule.action})


def check_webhook(rule: Rule) -> None:
    """ActionError when the rule's webhook address is refused before any call."""
    try:
        webhooks.precheck(rule.webhook_url)
    except DeliveryError as exc:
        raise ActionError(str(exc)) from None


def call_webhook(rule: Rule, event: OutboxEvent, subject: str) -> str:
    """Queue the webhook call (sent by a worker after the commit, see
    automation.webhooks); the address is checked now, the call made then."""
    check_webhook(rule)
    webhooks.queue([webhooks.call_row(rule, event, subject, now=timezone.now())])
    return _("queued")
