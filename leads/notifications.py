"""The lead stage's notification events (F44), registered with crm.notify, and the one
place leads code sends them from."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm import roles

REP_AND_MANAGERS = roles.OWNERS | roles.MANAGERS


def register() -> None:
    from crm.notify import EventType, register_event

    for event in (
        EventType(
            "lead.assigned",
            _("A new lead is assigned to me"),
            _("New lead for you: %(lead)s (score %(score)s)"),
            _("Verify it within 24 hours: call or message the contact and record the result."),
            roles=roles.OWNERS,
        ),
        EventType(
            "lead.assigned_verified",
            _("A verified lead is handed to me"),
            _("A verified lead is yours: %(lead)s"),
            _(
                "It was verified valid before it came to you, so there is nothing to verify:"
                " it is on your board to follow up. Contact the customer and set the next step."
            ),
            roles=roles.OWNERS,
        ),
        EventType(
            "lead.revisit",
            _("A lead of mine came back"),
            _("%(lead)s came back: the revisit is yours"),
            _("The same contact asked again; it is routed to you as the first lead's owner."),
            roles=roles.OWNERS,
        ),
        EventType(
            "lead.reassigned",
            _("A lead is reassigned to or from me"),
            _("Lead %(lead)s is now with %(owner)s"),
            roles=REP_AND_MANAGERS,
        ),
        EventType(
            "lead.pooled",
            _("A lead nobody could take went to the pool"),
            _("Nobody could take lead %(lead)s: it is in the pool"),
            _("No rep was eligible even with optional criteria dropped. Assign it by hand."),
            roles=roles.MANAGERS,
        ),
        EventType(
            "lead.returned",
            _("A lead returned to the pool (no second touch)"),
            _("Lead %(lead)s returned to the pool: no second touch in time"),
            _(
                "It went back to the pool and was dispatched again to another rep; when no rep"
                " could take it, it waits there for a manager."
            ),
            roles=REP_AND_MANAGERS,
        ),
        EventType(
            "zone.observation",
            _("A rep entered the observation zone"),
            _("%(rep)s is paused from dispatch: %(streak)s late first touches in a row"),
            _(
                "A training card is on the rep's home page; dispatch resumes on probation"
                " once it is acknowledged."
            ),
            roles=REP_AND_MANAGERS,
        ),
        EventType(
            "zone.recovered",
            _("A rep left the observation zone"),
            _("%(rep)s is back to normal dispatch"),
            roles=REP_AND_MANAGERS,
        ),
    ):
        register_event(event)


def managers():
    from crm.notify import managers_of

    return list(managers_of())


def send(event: str, recipients, params: dict, lead=None) -> None:
    from crm.notify import notify

    link = reverse("leads:detail", args=[lead.public_id]) if lead is not None else ""
    notify(event=event, recipients=list(recipients), params=params, link=link)
