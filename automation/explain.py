""" "Why did it not fire?" for one subject of one rule: the events of its kind about the
subject, the rule's runs on them with their outcomes and values, and the state kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from automation.models import Rule, RuleState, Run
from automation.runlog import history
from crm.models import OutboxEvent
from customers.models import Customer

SHOWN = 20


@dataclass
class Answer:
    subject: str
    reason: str
    events: int
    runs: list[Run]
    state: RuleState | None


def subject_for(text: str) -> str:
    """A subject as typed: "customer:42", or a customer's exact name."""
    text = text.strip()
    if ":" in text:
        return text
    customer = Customer.objects.filter(name=text).order_by("pk").first()
    return f"customer:{customer.pk}" if customer else text


def why_not(rule: Rule, text: str, *, days: int = 30) -> Answer:
    """Inside the rule's tenant: why `rule` did (not) fire for the subject `text`."""
    subject = subject_for(text)
    prefix, _sep, pk = subject.partition(":")
    about = Q(key=subject)
    if pk.isdigit():
        about |= Q(object_type__endswith=f".{prefix}", object_id=int(pk))
    events = OutboxEvent.objects.filter(
        about, kind=rule.trigger, at__gte=timezone.now() - timedelta(days=days)
    ).count()
    runs = history(rule, subject, latest=SHOWN)
    state = RuleState.objects.filter(rule=rule, subject=subject).first()
    if not rule.is_active:
        reason = _("The rule is off.")
    elif rule.paused_at is not None:
        reason = _("The rule is paused after failures: %(error)s") % {"error": rule.last_error}
    elif not events:
        reason = _("No event of its kind about this subject in the last %(days)s days.") % {
            "days": days
        }
    elif not runs:
        reason = _("Its events came before the rule was on, or are not processed yet.")
    else:
        reason = _("Last run: %(outcome)s.") % {"outcome": runs[0].get_outcome_display()}
        if runs[0].detail:
            reason += " " + runs[0].detail
    return Answer(subject, reason, events, runs, state)
