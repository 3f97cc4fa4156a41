"""The customers' business events (F47, crm.events): a follow-up logged, a customer's
level changed, a contact changed jobs. Emitted by customers.services in the change's
transaction."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.events import EventKind, emit, register_kind

FOLLOW_UP_LOGGED = "followup.logged"
LEVEL_CHANGED = "customer.level_changed"
CONTACT_CHANGED_JOBS = "contact.changed_jobs"


def register() -> None:
    register_kind(
        EventKind(
            FOLLOW_UP_LOGGED,
            _("Follow-up logged"),
            {
                "channel": str,
                "talk_tags": str,  # comma-separated
                "pains": str,
                "next_action": str,
                "closes_loop": bool,
                "by_id": int,
                "customer_id": int,
                "lead_id": int,
            },
            keyed_by="customer",
        )
    )
    register_kind(
        EventKind(
            LEVEL_CHANGED,
            _("Customer level changed"),
            {"level": str, "previous_level": str, "owner_id": int},
            keyed_by="customer",
        )
    )
    register_kind(
        EventKind(
            CONTACT_CHANGED_JOBS,
            _("Contact changed jobs"),
            {
                "contact_name": str,
                "role": str,  # the decision-chain role ("" when none: not a key contact)
                "title": str,
                "previous_title": str,
                "left": bool,  # marked as having left the customer
                "new_company": str,
                "moved": bool,  # moved to another customer
                "customer_id": int,  # the customer they worked for
                "owner_id": int,  # that customer's owner
            },
            keyed_by="customer",
        )
    )


def emit_follow_up(interaction) -> None:
    if interaction.customer_id:
        key = f"customer:{interaction.customer_id}"
    else:
        key = f"lead:{interaction.lead_id}"
    emit(
        FOLLOW_UP_LOGGED,
        interaction,
        key=key,
        at=interaction.at,
        channel=interaction.channel,
        talk_tags=",".join(interaction.talk_tags or []),
        pains=",".join(interaction.pains or []),
        next_action=interaction.next_action.name if interaction.next_action_id else "",
        closes_loop=bool(interaction.closes_loop),
        by_id=interaction.by_id,
        customer_id=interaction.customer_id,
        lead_id=interaction.lead_id,
    )


def emit_level_changed(customer, previous: str) -> None:
    emit(
        LEVEL_CHANGED,
        customer,
        level=customer.level,
        previous_level=previous,
        owner_id=customer.owner_id,
    )


def emit_contact_changed_jobs(contact, before: dict, customer) -> None:
    """`contact` (saved) changed jobs; `before`: its stored job fields before the edit,
    `customer`: the customer it worked for (the event's key)."""
    emit(
        CONTACT_CHANGED_JOBS,
        contact,
        key=f"customer:{customer.pk}",
        contact_name=contact.name,
        role=contact.role,
        title=contact.title,
        previous_title=before["title"],
        left=bool(contact.has_left),
        new_company=contact.new_company,
        moved=contact.customer_id != before["customer_id"],
        customer_id=customer.pk,
        owner_id=customer.owner_id,
    )
