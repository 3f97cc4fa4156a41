"""The daily board (F15) and closing the day (F19): a rep's work of today in one ranked list.

Items: leads to verify (the 24 h clock runs from `assigned_at`), revisits, verified leads
that came to the rep without a next step of theirs (returned from the pool, reassigned,
or a revisit of a customer verified earlier), and follow-ups whose next action is due
today or overdue (open `customers.Interaction`s by the rep, the next step a valid verdict
set included). Each is ranked

    rank = level weight × lead score factor × urgency weight
           × (1 + hours overdue × weight per hour)

with the tenant's `BoardSettings` (one row per tenant, created with the defaults). The
level is the customer's (A/B/C); a lead without a customer yet takes its source grade
(A/B/C) with the same weights. The lead score factor applies to leads waiting for their
verdict: score ÷ the active policy's base score (a lead at the base score counts ×1, one
scoring 80 against 50 ×1.6; at least ×0.2; ×1 when not scored); every other item counts
×1. Hours overdue: for a lead, the hours since it was assigned beyond the 24 h clock; for
a follow-up, the hours since the start of its due day (tenant time zone) once that day
is past, else 0.

The board is built from a fixed number of set-based queries whatever the number of items
(settings, the policy's base score, the open leads, the verified leads without a next
step, the open follow-ups): ranking happens in Python on those rows. The other apps'
sections beside this list (stalled opportunities, at-risk customers) come from the
kernel's registry, crm.board.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Membership
from crm.tenancy import current_tenant, tenant_today
from leads.models import BoardSettings, DailySummary, Lead, Verification, open_load_q

VERIFY_CLOCK = timedelta(hours=24)


# The lead score factor's floor: a lead scoring near zero still climbs when overdue.
SCORE_FACTOR_MIN = 0.2


class Kind:
    VERIFY = "verify"
    REVISIT = "revisit"
    FOLLOW_UP = "follow_up"
    VALID = "valid"  # verified valid, no next step of the owner's yet


# The kind an item is counted and filtered with where the board has no section of its own.
GROUPS = {Kind.VALID: Kind.FOLLOW_UP}

KIND_LABELS = {
    Kind.VERIFY: _("To verify"),
    Kind.REVISIT: _("Revisit"),
    Kind.FOLLOW_UP: _("Follow-up"),
    Kind.VALID: _("Verified, to follow up"),
}
URGENCY_LABELS = {
    "verify": _("lead to verify"),
    "revisit": _("revisit to verify"),
    "revisit_valid": _("revisit of a customer to follow up"),
    "valid": _("verified lead to follow up"),
    "overdue": _("follow-up overdue"),
    "due": _("follow-up due today"),
}


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
    urgency: str  # verify, revisit, revisit_valid, valid, overdue, due
    urgency_weight: float
    hours_overdue: float
    per_hour: float
    deadline: datetime  # the lead's clock end, or the start of the follow-up's due day
    now: datetime = field(repr=False)
    level_of: str = "customer"  # where the level comes from: "customer" or "grade"
    score: int | None = None  # the lead's score, for a lead waiting for its verdict
    score_base: int = 50  # the active policy's base score: the score that counts ×1

    @property
    def time_factor(self) -> float:
        return 1 + self.hours_overdue * self.per_hour

    @property
    def score_factor(self) -> float:
        """×1 at the policy's base score, proportional above and below it (at least
        SCORE_FACTOR_MIN); ×1 for an item that is not a lead waiting for its verdict."""
        if not self.scored or not self.score_base:
            return 1.0
        return max(self.score / self.score_base, SCORE_FACTOR_MIN)

    @property
    def scored(self) -> bool:
        return self.score is not None and self.lead is not None and self.needs_verdict

    @property
    def rank(self) -> float:
        return self.level_weight * self.score_factor * self.urgency_weight * self.time_factor

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
        values = {"level": self.level, "lw": _num(self.level_weight)}
        if self.level_of == "grade":
            parts = [_("source grade %(level)s ×%(lw)s") % values]
        else:
            parts = [_("level %(level)s ×%(lw)s") % values]
        if self.scored:
            parts.append(
                _("lead score %(score)s ×%(factor)s")
                % {"score": self.score, "factor": _num(self.score_factor)}
            )
        parts.append(
            _("%(urgency)s ×%(uw)s")
            % {"urgency": self.urgency_label, "uw": _num(self.urgency_weight)}
        )
        parts.append(
            _("(1 + %(hours)s h × %(per_hour)s) = %(rank)s")
            % {
                "hours": _num(self.hours_overdue, 1),
                "per_hour": _num(self.per_hour, 3),
                "rank": _num(self.rank),
            }
        )
        return " · ".join(str(p) for p in parts)


def _num(value: float, digits: int = 2) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def level_weight(settings: BoardSettings, level: str | None) -> tuple[str, float]:
    """The weight of a customer level, or of a lead's source grade (the same A/B/C)."""
    level = level if level in ("A", "B") else "C"
    return level, {"A": settings.level_a, "B": settings.level_b, "C": settings.level_c}[level]


def lead_item(
    lead: Lead, settings: BoardSettings, now: datetime, *, score_base: int = 50
) -> BoardItem:
    """A lead on the board: waiting for its verdict (to verify, or a revisit to verify), or
    verified valid without a next step of its owner (to follow up, or a revisit of a
    verified customer). Either way its 24 h clock runs from `assigned_at`."""
    assigned = lead.assigned_at or now
    deadline = assigned + VERIFY_CLOCK
    verified = bool(lead.verification)
    if lead.revisit_of_id is not None:
        kind = Kind.REVISIT
        urgency, weight = ("revisit_valid" if verified else "revisit"), settings.urgency_revisit
    elif verified:
        kind, urgency, weight = Kind.VALID, "valid", settings.urgency_due
    else:
        kind, urgency, weight = Kind.VERIFY, "verify", settings.urgency_verify
    customer = lead.customer if lead.customer_id else None
    if customer is not None:
        (level, lw), level_of = level_weight(settings, customer.level), "customer"
    else:
        (level, lw), level_of = level_weight(settings, lead.source_grade), "grade"
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
        level_of=level_of,
        score=lead.score,
        score_base=score_base,
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


def _lead_rows(queryset):
    return (
        queryset.select_related("customer", "channel", "revisit_of")
        .only(
            *_LEAD_LABEL,
            "tenant_id",
            "owner_id",
            "message",
            "source_grade",
            "score",
            "is_suspect",
            "suspect_reasons",
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


def unplanned_q(membership: Membership) -> Q:
    """The member's leads verified valid that have no next step of theirs: nothing logged
    on the lead or its customer since it came to them, and no open step on it. A lead
    returned from the pool or reassigned to them, a revisit of a customer verified
    earlier, a lead verified before verdicts set a next step. Logging a follow-up (with
    its required next action) takes it off."""
    from customers.models import Interaction

    mine = Interaction.objects.filter(by=membership)
    on_lead = mine.filter(lead=OuterRef("pk")).filter(
        Q(at__gte=OuterRef("assigned_at")) | Q(next_done_at__isnull=True)
    )
    on_customer = mine.filter(customer=OuterRef("customer"), at__gte=OuterRef("assigned_at"))
    return Q(verification__in=Verification.valid()) & ~Q(Exists(on_lead)) & ~Q(Exists(on_customer))


def board_leads(membership: Membership):
    """The member's leads on the board, in one query: to verify (their open load) and
    verified without a next step (`unplanned_q`)."""
    return _lead_rows(
        Lead.objects.filter(open_load_q() | unplanned_q(membership), owner=membership)
    )


def open_follow_ups(membership: Membership):
    """The member's follow-ups whose next action is not done yet (the next step a valid
    verdict set included), on their customers and on leads they still own: a lead that
    went to another rep takes its open steps off the earlier owner's board."""
    from customers.models import Interaction

    return (
        Interaction.objects.filter(by=membership, next_done_at__isnull=True)
        .filter(Q(lead__isnull=True) | Q(lead__owner=membership))
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
        counts = {Kind.VERIFY: 0, Kind.REVISIT: 0, Kind.FOLLOW_UP: 0, Kind.VALID: 0}
        counts["overdue"] = 0
        for item in self.items:
            counts[item.kind] += 1
            counts["overdue"] += item.is_overdue
        counts["total"] = len(self.items)
        # The header's "Follow-ups": next actions due, and verified leads to follow up.
        counts["follow_ups"] = counts[Kind.FOLLOW_UP] + counts[Kind.VALID]
        return counts

    @property
    def open_load(self) -> int:
        """The owner's open load (`Lead.objects.open_load()`): the leads on the board that
        wait for their verdict."""
        return sum(1 for i in self.items if i.lead is not None and i.needs_verdict)

    @property
    def overdue(self) -> list[BoardItem]:
        return [i for i in self.items if i.is_overdue]


def board_for(
    membership: Membership, *, now: datetime | None = None, base: int | None = None
) -> Board:
    """The member's board: every item ranked, highest first (ties: the earlier deadline).

    Four queries whatever the number of items (settings, the base score unless `base` is
    given, the leads, the follow-ups)."""
    now = now or timezone.now()
    tz = _tz(membership)
    today = tenant_today(now)
    settings = board_settings()
    if base is None:
        from leads.assignment.policy import active_params

        base = active_params().base_score
    items = [lead_item(lead, settings, now, score_base=base) for lead in board_leads(membership)]
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
        if item.lead is not None and item.needs_verdict and start <= item.deadline < end:
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
    from customers.models import Interaction, InteractionKind

    now = now or timezone.now()
    board = board_for(membership, now=now)
    tz = _tz(membership)
    start = day_start(board.today, tz)
    end = day_start(board.today + timedelta(days=1), tz)
    # A verdict's next step is the verification, counted below: not a second contact.
    logged = Interaction.objects.filter(
        by=membership, kind=InteractionKind.FOLLOW_UP, at__gte=start, at__lt=end
    ).aggregate(n=Count("id"), loops=Count("id", filter=Q(closes_loop=True)))
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
            # Verified leads without a next step count with the follow-ups.
            "overdue": {
                kind: sum(1 for i in overdue if GROUPS.get(i.kind, i.kind) == kind)
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
