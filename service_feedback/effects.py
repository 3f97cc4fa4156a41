"""What a saved ticket does to sales (F27–F29): called by `services.ticket_upsert` and
`services.ticket_link` after each save, inside their transaction.

(Built by the effects slice: board items for upsell and referral flags, notifications
for churn risk, quality clusters.)"""

from __future__ import annotations


def ticket_saved(ticket, *, created: bool, new_flags: list[str], linked: bool = False) -> None:
    """The effects of `ticket` just saved (`new_flags`: flags it did not have before;
    `linked`: a person just linked it to its customer)."""
