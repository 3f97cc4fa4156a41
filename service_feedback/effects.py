"""What saved tickets do to sales (F27–F29): called by `services.tickets_write` (a batch
of the inbox, or `ticket_upsert`'s one) and `services.ticket_link` after they save,
inside their transaction, once per batch (`tickets_saved`).

- Upsell and referral flags: nothing is written here. The owner's daily board lists the
  customer's flagged tickets ("服务线索", service_feedback.board) until a follow-up is
  logged on the customer after the ticket came in.
- Churn risk: the customer's owner and the sales managers are notified, once per ticket
  (a ticket that gets the flag again, or is linked again, does not notify twice).
- Quality clusters: the ticket joins its product model × fault code × region cluster
  (service_feedback.alerts): attached to the open alert, or raising one at the threshold.

`register()` hands everything the app contributes to the kernel's registries (the board
section, the customer page's panel and timeline, the notification events, the audit
actions); ServiceFeedbackConfig.ready() calls it.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

CHURN_EVENT = "service.churn_risk"


def ticket_saved(
    ticket, *, created: bool, new_flags: list[str], linked: bool = False, settings=None
) -> None:
    """The effects of `ticket` just saved (`new_flags`: flags it did not have before;
    `linked`: a person just linked it to its customer; `settings`: the tenant's service
    settings when the caller has them): `tickets_saved` of one, its row as saved."""
    from service_feedback import alerts

    tickets_saved(ticket.tenant, [(ticket, alerts.state_of(ticket), new_flags)], settings=settings)


def tickets_saved(tenant, saved, *, settings=None, now=None) -> None:
    """The effects of a batch of tickets just written, once for the batch: `saved` holds
    (ticket, its row's alerts.Before state before the write or None when new, the flags
    it did not have before), in the order they were written. Churn notices for the
    matched tickets whose churn flag is new (once per ticket), then the quality clusters
    (alerts.check_tickets: the batch's clusters in a few statements)."""
    from service_feedback import alerts
    from service_feedback.models import FlagKind

    churned = [t for t, _b, new in saved if t.customer_id is not None and FlagKind.CHURN in new]
    if churned:
        churn_notify_many(tenant, churned)
    alerts.check_tickets(tenant, [(t, b) for t, b, _new in saved], settings=settings, now=now)


def churn_notify(ticket) -> int:
    """Tell the customer's owner and the sales managers that `ticket` flags a churn risk,
    unless they were told about this ticket already. How many were told."""
    return churn_notify_many(ticket.tenant, [ticket])


def churn_notify_many(tenant, tickets) -> int:
    """`churn_notify` of each ticket: who was told already read in one query, the
    customers in one, the managers in one; then one notice per ticket not told yet."""
    from crm.models import Notification
    from crm.notify import managers_of, notify
    from customers.models import Customer

    keys = {str(t.public_id): t for t in tickets}
    told = set(
        Notification.objects.filter(event=CHURN_EVENT, params__ticket__in=list(keys)).values_list(
            "params__ticket", flat=True
        )
    )
    todo = [t for key, t in keys.items() if key not in told]
    if not todo:
        return 0
    customers = Customer.objects.select_related("owner__user").in_bulk(
        {t.customer_id for t in todo}
    )
    managers = list(managers_of(tenant))
    sent = 0
    for ticket in todo:
        customer = customers[ticket.customer_id]
        recipients = [customer.owner, *managers]
        sent += len(
            notify(
                event=CHURN_EVENT,
                recipients=[m for m in recipients if m is not None],
                params={
                    "ticket": str(ticket.public_id),
                    "customer": customer.name,
                    "subject": ticket.subject or ticket.external_id,
                    "words": "、".join(ticket.flag_words or []),
                },
                link=reverse("customers:detail", args=[customer.public_id]),
                tenant=tenant,
            )
        )
    return sent


def register() -> None:
    """Everything the effects, the review card and the quality alerts contribute."""
    from crm import contributions
    from crm.audit import register_actions
    from crm.board import BoardSection, register_section
    from crm.navigation import NavItem
    from crm.navigation import register as register_nav
    from crm.notify import EventType, register_event
    from crm.roles import BOARD, CUSTOMER_LIST
    from service_feedback import board, review
    from service_feedback import contributions as service_contributions
    from service_feedback.alerts import ALERT_EVENT

    register_event(
        EventType(
            CHURN_EVENT,
            _("A customer's service ticket signals a churn risk"),
            _("Churn risk at %(customer)s: %(subject)s"),
            _("The service ticket mentions %(words)s. Call the customer before it leaves."),
        )
    )
    register_event(
        EventType(
            ALERT_EVENT,
            _("A quality alert was raised (many tickets on one fault)"),
            _("Quality alert: %(model)s · %(fault)s · %(region)s"),
            _(
                "%(count)s tickets on this product model and fault code in %(region)s within "
                "%(hours)s hours. Check the affected customers."
            ),
        )
    )
    register_actions(
        {
            "service_review.read": _("Service review card read"),
            "quality_alert.close": _("Quality alert closed"),
        }
    )
    register_section(
        BoardSection(
            key="service_leads",
            title=_("Service leads"),
            icon="headset",
            order=20,
            holds=_(
                "Your customers' service tickets that ask for more (upsell) or name someone "
                "(referral), until you log a follow-up on the customer."
            ),
            source=_("Helpdesk tickets matched to your customers and flagged by keywords."),
            roles=BOARD,
            items=board.service_lead_items,
            template="service_feedback/board_service_leads.html",
        )
    )
    register_nav(
        NavItem(
            "quality_alerts",
            _("Quality alerts"),
            "service_feedback:alerts",
            "exclamation-octagon",
            description=_(
                "Many tickets on one product model and fault code in one region: the "
                "cluster's tickets, closed by a manager with a note or after quiet days."
            ),
            roles=CUSTOMER_LIST,
            order=40,
            in_navbar=False,
        )
    )
    contributions.register_panel(
        service_contributions.CUSTOMER_PAGE,
        review.customer_panel,
        key="service_review",
        lazy=True,
        title=_("Service review"),
        order=30,
    )

    def tickets_12_months(membership):
        from datetime import timedelta

        from django.utils import timezone

        from service_feedback.models import Ticket

        since = timezone.now() - timedelta(days=365)
        return contributions.count_of(Ticket.objects.filter(opened_at__gte=since), "customer")

    contributions.register_figure(
        service_contributions.CUSTOMER_PAGE,
        "tickets_12_months",
        label=_("Tickets, 12 months"),
        value=tickets_12_months,
        order=30,
    )
    contributions.register_timeline_source(
        service_contributions.CUSTOMER_PAGE,
        "ticket",
        rows=service_contributions.customer_ticket_rows,
        load=service_contributions.load_ticket_entries,
    )
