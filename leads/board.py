"""The daily board (F15) and closing the day (F19): a rep's work of today in one ranked list.

Items: leads to verify (the 24 h clock runs from `assigned_at`), revisits still unverified,
and follow-ups whose next action is due today or overdue (open `customers.Interaction`s
by the rep). Each is ranked

    rank = level weight × urgency weight × (1 + hours overdue × weight per hour)

with the tenant's `BoardSettings` (one row per tenant, created with the defaults). A lead
without a customer counts as level C. Hours overdue: for a lead, the hours since it was
assigned beyond the 24 h clock; for a follow-up, the hours since the start of its due day
(tenant time zone) once that day is past, else 0.

The board is built from a fixed number of set-based queries whatever the number of items
(settings, the open leads, the open follow-ups): ranking happens in Python on those rows.
Later stages (stalled opportunities, at-risk customers) have their slots in `SLOTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Membership
from crm.tenancy import current_tenant, tenant_today
from leads.models import BoardSettings, DailySummary, Lead

VERIFY_CLOCK = timedelta(hours=24)


class Kind:
    VERIFY = "verify"
    REVISIT = "revisit"
    FOLLOW_UP = "follow_up"


KIND_LABELS = {
    Kind.VERIFY: _("To verify"),
    Kind.REVISIT: _("Revisit"),
    Kind.FOLLOW_UP: _("Follow-up"),
}
URGENCY_LABELS = {
    "verify": _("lead to verify"),
    "revisit": _("revisit to verify"),
    "overdue": _("follow-up overdue"),
    "due": _("follow-up due today"),
}


@dataclass(frozen=True)
class Slot:
    """A section that a later stage fills; shown empty, saying what it will hold."""

    key: str
    title: str
    holds: str
    source: str
    icon: str


SLOTS = (
    Slot(
        "stalled_opportunities",
        _("Stalled opportunities"),
        _(
            "Your opportunities that have not moved to their next stage in time, with the "
            "action each stage requires."
        ),
        _("Filled by opportunities once they are tracked in the CRM."),
        "hourglass-split",
    ),
    Slot(
        "at_risk_customers",
        _("At-risk customers"),
        _("Your customers whose health score dropped, with the playbook step to take."),
        _("Filled by customer health once it is scored."),
        "heart-pulse",
    ),
)


def board_settings() -> BoardSettings:
    """The current tenant's rank weights (created with the defaults on first use)."""
    tenant = current_tenant()
    found = BoardSettings.objects.filter(tenant=tenant).first()
    if found is not None:
        return found
    return BoardSettings.objects.get_or_create(tenant=tenant)[0]


# -- time in the tenant's zone ------------------------------------------------------------------


def _tz(membership: Membership):
    return membership.tenant.tzinfo


def day_start(day: date, tz) -> datetime:
    """The first instant of `day` in time zone `tz`."""
    return datetime.combine(day, time.min, tzinfo=tz)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


# -- the items --------------------------------------------------------------------------------


@dataclass
class BoardItem:
    kind: str
    key: str  # unique on the page: "lead-<uuid>" or "fu-<uuid>"
    lead: Lead | None
    interaction: object | None  # customers.Interaction
    customer: object | None  # customers.Customer
    level: str  # A, B or C
    level_weight: float
    urgency: str  # verify, revisit, overdue, due
    urgency_weight: float
    hours_overdue: float
    per_hour: float
    deadline: datetime  # the lead's clock end, or the start of the follow-up's due day
    now: datetime = field(repr=False)

    @property
    def time_factor(self) -> float:
        return 1 + self.hours_overdue * self.per_hour

    @property
    def rank(self) -> float:
        return self.level_weight * self.urgency_weight * self.time_factor

    @property
    def is_overdue(self) -> bool:
        if self.kind == Kind.FOLLOW_UP:
            return self.urgency == "overdue"
        return self.hours_overdue > 0

    @property
    def hours_left(self) -> float:
        """Hours before a lead's 24 h clock ends (0 once it has)."""
        return max(0.0, _hours(self.deadline - self.now))

    @property
    def needs_verdict(self) -> bool:
        """A lead to verify (an original or a revisit), not a verified one."""
        return self.kind in (Kind.VERIFY, Kind.REVISIT) and not self.lead.verification

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def urgency_label(self) -> str:
        return URGENCY_LABELS[self.urgency]

    @property
    def has_customer(self) -> bool:
        return self.customer is not None

    @property
    def title(self) -> str:
        if self.customer is not None:
            return self.customer.name
        if self.lead is not None:
            return str(self.lead)
        return ""

    def breakdown(self) -> str:
        """The rank's arithmetic in one line (the item's tooltip)."""
        return _(
            "level %(level)s ×%(lw)s · %(urgency)s ×%(uw)s · "
            "(1 + %(hours)s h × %(per_hour)s) = %(rank)s"
        ) % {
            "level": self.level,
            "lw": _num(self.level_weight),
            "urgency": self.urgency_label,
            "uw": _num(self.urgency_weight),
            "hours": _num(self.hours_overdue, 1),
            "per_hour": _num(self.per_hour, 3),
            "rank": _num(self.rank),
        }


def _num(value: float, digits: int = 2) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def level_weight(settings: BoardSettings, level: str | None) -> tuple[str, float]:
    level = level if level in ("A", "B") else "C"
    return level, {"A": settings.level_a, "B": settings.level_b, "C": settings.level_c}[level]


def lead_item(lead: Lead, settings: BoardSettings, now: datetime) -> BoardItem:
    assigned = lead.assigned_at or now
    deadline = assigned + VERIFY_CLOCK
    kind = Kind.REVISIT if lead.revisit_of_id is not None else Kind.VERIFY
    customer = lead.customer if lead.customer_id else None
    level, lw = level_weight(settings, customer.level if customer else None)
    urgency = "revisit" if kind == Kind.REVISIT else "verify"
    weight = settings.urgency_revisit if kind == Kind.REVISIT else settings.urgency_verify
    return BoardItem(
        kind=kind,
        key=f"lead-{lead.public_id}",
        lead=lead,
        interaction=None,
        customer=customer,
        level=level,
        level_weight=lw,
        urgency=urgency,
        urgency_weight=weight,
        hours_overdue=max(0.0, _hours(now - deadline)),
        per_hour=settings.overdue_per_hour,
        deadline=deadline,
        now=now,
    )


def follow_up_item(interaction, settings: BoardSettings, now: datetime, today: date, tz):
    lead = interaction.lead if interaction.lead_id else None
    customer = interaction.customer if interaction.customer_id else None
    if customer is None and lead is not None and lead.customer_id:
        customer = lead.customer
    level, lw = level_weight(settings, customer.level if customer else None)
    due_start = day_start(interaction.next_action_due, tz)
    overdue = interaction.next_action_due < today
    return BoardItem(
        kind=Kind.FOLLOW_UP,
        key=f"fu-{interaction.public_id}",
        lead=lead,
        interaction=interaction,
        customer=customer,
        level=level,
        level_weight=lw,
        urgency="overdue" if overdue else "due",
        urgency_weight=settings.urgency_overdue if overdue else settings.urgency_due,
        hours_overdue=max(0.0, _hours(now - due_start)) if overdue else 0.0,
        per_hour=settings.overdue_per_hour,
        deadline=due_start,
        now=now,
    )


# The columns an item shows: a lead has some fifty, and building a few hundred full rows
# was the board's largest cost after the template (bench/board.py).
_LEAD_LABEL = ("public_id", "company", "contact_name", "phone")
_CUSTOMER = ("public_id", "name", "level")


def _prefixed(prefix: str, fields) -> list[str]:
    return [f"{prefix}__{name}" for name in fields]


def open_leads(membership: Membership):
    """The member's leads still to verify (originals and revisits), oldest first: their
    open load (`Lead.objects.open_load()`, the cap's definition)."""
    return (
        Lead.objects.open_load()
        .filter(owner=membership)
        .select_related("customer", "channel", "revisit_of")
        .only(
            *_LEAD_LABEL,
            "tenant_id",
            "owner_id",
            "message",
            "source_grade",
            "status",
            "verification",
            "assigned_at",
            "revisit_of_id",
            "customer_id",
            "channel_id",
            *_prefixed("customer", _CUSTOMER),
            "channel__name",
            *_prefixed("revisit_of", _LEAD_LABEL),
        )
        .order_by("assigned_at", "id")
    )


def open_follow_ups(membership: Membership):
    """The member's follow-ups whose next action is not done yet."""
    from customers.models import Interaction

    return (
        Interaction.objects.filter(by=membership, next_done_at__isnull=True)
        .select_related("customer", "contact", "next_action", "lead", "lead__customer")
        .only(
            "tenant_id",
            "public_id",
            "by_id",
            "at",
            "note",
            "next_action_due",
            "customer_id",
            "contact_id",
            "lead_id",
            "next_action_id",
            *_prefixed("customer", _CUSTOMER),
            "contact__name",
            "contact__phone",
            "next_action__name",
            *_prefixed("lead", (*_LEAD_LABEL, "customer_id")),
            *_prefixed("lead__customer", _CUSTOMER),
        )
        .order_by()  # ranked in Python
    )


@dataclass
class Board:
    membership: Membership
    now: datetime
    today: date
    settings: BoardSettings
    items: list[BoardItem]

    @property
    def counts(self) -> dict[str, int]:
        counts = {Kind.VERIFY: 0, Kind.REVISIT: 0, Kind.FOLLOW_UP: 0, "overdue": 0}
        for item in self.items:
            counts[item.kind] += 1
            counts["overdue"] += item.is_overdue
        counts["total"] = len(self.items)
        return counts

    @property
    def open_load(self) -> int:
        """The owner's open load (`Lead.objects.open_load()`): the leads on the board that
        wait for their verdict."""
        return sum(1 for i in self.items if i.lead is not None and i.needs_verdict)

    @property
    def overdue(self) -> list[BoardItem]:
        return [i for i in self.items if i.is_overdue]


def board_for(membership: Membership, *, now: datetime | None = None) -> Board:
    """The member's board: every item ranked, highest first (ties: the earlier deadline).

    Three queries whatever the number of items (settings, leads, follow-ups)."""
    now = now or timezone.now()
    tz = _tz(membership)
    today = tenant_today(now)
    settings = board_settings()
    items = [lead_item(lead, settings, now) for lead in open_leads(membership)]
    follow_ups = open_follow_ups(membership).filter(next_action_due__lte=today)
    items += [follow_up_item(i, settings, now, today, tz) for i in follow_ups]
    items.sort(key=lambda i: (-i.rank, i.deadline, i.key))
    return Board(membership=membership, now=now, today=today, settings=settings, items=items)


# -- closing the day (F19) ---------------------------------------------------------------------


def _label(customer, lead, contact=None) -> str:
    who = customer.name if customer is not None else (str(lead) if lead is not None else "")
    name = contact.name if contact is not None else ""
    if name and name != who:
        who = f"{who} · {name}" if who else name
    return who


def tomorrow_actions(
    membership: Membership, board: Board, *, now: datetime
) -> list[dict[str, str | None]]:
    """Open follow-ups due tomorrow and leads whose 24 h clock ends tomorrow (tenant time
    zone), by when they fall due. Stored as data; the templates word them."""
    tz = _tz(membership)
    tomorrow = board.today + timedelta(days=1)
    start, end = day_start(tomorrow, tz), day_start(tomorrow + timedelta(days=1), tz)
    actions = []
    for item in board.items:
        if item.lead is not None and item.kind != Kind.FOLLOW_UP and start <= item.deadline < end:
            actions.append(
                {
                    "kind": item.kind,
                    "who": _label(item.customer, item.lead),
                    "what": "",
                    "due": timezone.localtime(item.deadline, tz).isoformat(),
                    "lead": str(item.lead.public_id),
                    "customer": str(item.customer.public_id) if item.customer else None,
                }
            )
    for interaction in open_follow_ups(membership).filter(next_action_due=tomorrow):
        lead = interaction.lead if interaction.lead_id else None
        customer = interaction.customer if interaction.customer_id else None
        contact = interaction.contact if interaction.contact_id else None
        actions.append(
            {
                "kind": Kind.FOLLOW_UP,
                "who": _label(customer, lead, contact),
                "what": interaction.next_action.name,
                "due": start.isoformat(),
                "lead": str(lead.public_id) if lead is not None else None,
                "customer": str(customer.public_id) if customer is not None else None,
            }
        )
    actions.sort(key=lambda a: (a["due"], a["kind"], a["who"]))
    return actions


def day_figures(membership: Membership, *, now: datetime | None = None) -> dict:
    """What closing the day now would record (nothing is written)."""
    from customers.models import Interaction

    now = now or timezone.now()
    board = board_for(membership, now=now)
    tz = _tz(membership)
    start = day_start(board.today, tz)
    end = day_start(board.today + timedelta(days=1), tz)
    logged = Interaction.objects.filter(by=membership, at__gte=start, at__lt=end).aggregate(
        n=Count("id"), loops=Count("id", filter=Q(closes_loop=True))
    )
    verified = Lead.objects.filter(
        verified_by=membership, verified_at__gte=start, verified_at__lt=end
    ).count()
    overdue = board.overdue
    return {
        "day": board.today,
        "contacts": logged["n"] + verified,
        "loops_closed": logged["loops"],
        "overdue_left": len(overdue),
        "tomorrow": tomorrow_actions(membership, board, now=now),
        "details": {
            "interactions": logged["n"],
            "verifications": verified,
            "overdue": {
                kind: sum(1 for i in overdue if i.kind == kind)
                for kind in (Kind.VERIFY, Kind.REVISIT, Kind.FOLLOW_UP)
            },
            "open_items": len(board.items),
        },
    }


def day_close(membership: Membership, *, now: datetime | None = None) -> DailySummary:
    """Write (or, closed again the same day, update) the member's summary of today."""
    now = now or timezone.now()
    figures = day_figures(membership, now=now)
    day = figures.pop("day")
    summary, _created = DailySummary.objects.update_or_create(
        tenant=membership.tenant,
        membership=membership,
        day=day,
        defaults={**figures, "closed_at": now},
    )
    return summary


def summary_of(membership: Membership, day: date) -> DailySummary | None:
    return DailySummary.objects.filter(membership=membership, day=day).first()
