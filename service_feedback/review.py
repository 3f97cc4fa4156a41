"""The service review card (F28): before a visit, what the customer lived through with
service lately, against the tenant's targets.

The customer's last CARD_TICKETS tickets of the last CARD_DAYS days: how fast (first
response against `ServiceSettings.first_response_minutes`) and how well (resolution
against `resolution_hours`, satisfaction) each was solved, the sentiment, and the hints
of the tenant's `ReviewHint` rules whose words all appear in a ticket's text (the default
rule "V2.0" + "兼容" → "带上兼容性白皮书" is created on first use). The rep marks the card
read (`services.review_mark_read`: a `ReviewRead` covering the latest ticket, audited);
it says read until a newer ticket arrives. Managers see who read it when.

Shown on the customer page (a crm.contributions panel, beside the follow-up form, so it
is read before a visit is logged) and, summed up, on the board's 服务线索 items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.roles import MANAGERS
from service_feedback.models import ReviewHint, ReviewRead, ServiceSettings, Ticket

CARD_TICKETS = 5
CARD_DAYS = 180
READS_SHOWN = 10
DEFAULT_HINTS = ((("V2.0", "兼容"), "带上兼容性白皮书"),)
POSITIVE, NEGATIVE = 20, -20


def targets(tenant) -> ServiceSettings:
    """The tenant's service settings as a page reads them: its row, else the defaults
    (not saved here: the services create the row on first use)."""
    return ServiceSettings.for_tenant(tenant, create=False)


def hints_for(tenant) -> list[ReviewHint]:
    """The tenant's active hint rules (the default one created on first use)."""
    rules = list(ReviewHint.objects.filter(is_active=True))
    if not rules and not ReviewHint.objects.exists():
        ReviewHint.objects.bulk_create(
            [ReviewHint(tenant=tenant, words=list(w), hint=h) for w, h in DEFAULT_HINTS]
        )
        rules = list(ReviewHint.objects.filter(is_active=True))
    return rules


def hints_of(tickets: list[Ticket], rules: list[ReviewHint]) -> list[str]:
    """The hints whose words all appear in one of `tickets`' text, in the rules' order."""
    texts = [f"{t.subject}\n{t.text}".casefold() for t in tickets]
    found = []
    for rule in rules:
        words = [str(w).casefold() for w in rule.words or [] if str(w).strip()]
        matched = words and any(all(w in text for w in words) for text in texts)
        if matched and rule.hint not in found:
            found.append(rule.hint)
    return found


def sentiment_label(value) -> str:
    if value is None:
        return ""
    if value >= POSITIVE:
        return str(_("positive"))
    if value <= NEGATIVE:
        return str(_("negative"))
    return str(_("neutral"))


@dataclass
class Row:
    """One ticket on the card, against the targets (None: not known yet)."""

    ticket: Ticket
    response_ok: bool | None
    resolution_ok: bool | None

    @property
    def sentiment(self) -> str:
        return sentiment_label(self.ticket.sentiment)

    @property
    def resolution_hours(self):
        minutes = self.ticket.resolution_minutes
        return None if minutes is None else round(minutes / 60, 1)


@dataclass
class Summary:
    """The card in figures: how many tickets, on time against the targets, the averages."""

    count: int = 0
    responded: int = 0
    responded_on_time: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    satisfaction: float | None = None
    sentiment: float | None = None
    hints: list[str] = field(default_factory=list)

    @property
    def sentiment_label(self) -> str:
        return sentiment_label(self.sentiment)


def _average(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 1) if values else None


def _rows(tickets: list[Ticket], settings: ServiceSettings) -> list[Row]:
    response_target = settings.first_response_minutes
    resolution_target = settings.resolution_hours * 60
    return [
        Row(
            t,
            None
            if t.first_response_minutes is None
            else t.first_response_minutes <= response_target,
            None if t.resolution_minutes is None else t.resolution_minutes <= resolution_target,
        )
        for t in tickets
    ]


def _summary(rows: list[Row], rules: list[ReviewHint]) -> Summary:
    return Summary(
        count=len(rows),
        responded=sum(r.response_ok is not None for r in rows),
        responded_on_time=sum(bool(r.response_ok) for r in rows),
        resolved=sum(r.resolution_ok is not None for r in rows),
        resolved_on_time=sum(bool(r.resolution_ok) for r in rows),
        satisfaction=_average(r.ticket.satisfaction for r in rows),
        sentiment=_average(r.ticket.sentiment for r in rows),
        hints=hints_of([r.ticket for r in rows], rules),
    )


def recent_tickets(customer, now=None):
    since = (now or timezone.now()) - timedelta(days=CARD_DAYS)
    return Ticket.objects.filter(customer=customer, opened_at__gte=since).order_by(
        "-opened_at", "-id"
    )


@dataclass
class Card:
    customer: object
    settings: ServiceSettings
    rows: list[Row]
    summary: Summary
    read: ReviewRead | None  # the member's read covering the latest ticket
    reads: list[ReviewRead] | None  # for managers: who read it when (newest first)

    @property
    def latest(self) -> Ticket | None:
        return self.rows[0].ticket if self.rows else None


def card(customer, membership, *, now=None) -> Card:
    """The customer's service review card as `membership` sees it."""
    tenant = membership.tenant
    settings = targets(tenant)
    tickets = list(recent_tickets(customer, now)[:CARD_TICKETS])
    rows = _rows(tickets, settings)
    summary = _summary(rows, hints_for(tenant) if rows else [])
    read = None
    if tickets:
        read = (
            ReviewRead.objects.filter(customer=customer, member=membership, last_ticket=tickets[0])
            .order_by("-read_at", "-id")
            .first()
        )
    reads = None
    if membership.role in MANAGERS:
        reads = list(
            ReviewRead.objects.filter(customer=customer)
            .select_related("member__user", "last_ticket")
            .order_by("-read_at", "-id")[:READS_SHOWN]
        )
    return Card(customer, settings, rows, summary, read, reads)


def summaries(tenant, customers) -> dict[int, Summary]:
    """The cards' summaries of several customers of `tenant` (the board's items): the
    settings, the tickets and the hint rules, one query each."""
    customers = {c.pk: c for c in customers}
    if not customers:
        return {}
    settings = targets(tenant)
    since = timezone.now() - timedelta(days=CARD_DAYS)
    tickets: dict[int, list[Ticket]] = {pk: [] for pk in customers}
    for t in Ticket.objects.filter(customer_id__in=customers, opened_at__gte=since).order_by(
        "customer_id", "-opened_at", "-id"
    ):
        if len(tickets[t.customer_id]) < CARD_TICKETS:
            tickets[t.customer_id].append(t)
    rules = hints_for(tenant)
    return {pk: _summary(_rows(found, settings), rules) for pk, found in tickets.items()}


def customer_panel(request, membership, customer):
    """The customer page's panel (crm.contributions): the card, when there are tickets."""
    found = card(customer, membership)
    if not found.rows:
        return None
    return "service_feedback/panel_review.html", {"card": found, "customer": customer}
