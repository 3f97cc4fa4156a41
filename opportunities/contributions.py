"""What opportunities adds to the customer page and the lead page (crm.contributions;
registered from opportunities.registrations), and the history's words, which the
opportunity's own page shows too.

- The customer page ("customers.customer"): a panel with the customer's opportunities
  (stage, status, amount unless crm.roles.AMOUNT_HIDDEN, the valid badge) and the
  "新建商机" button; in its timeline, the history of those opportunities.
- The lead page ("leads.lead"): a panel with the opportunities that came from the lead
  and, for a lead verified valid with its customer, the "转为商机" button; in its
  timeline, their history.

Timelines are read by people who may not see amounts (service agents read customers), so
their entries never carry one; the opportunity's page shows amounts to those who may.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm import contributions
from crm.contributions import PanelWindow
from crm.roles import OPPORTUNITY_CREATORS, OPPORTUNITY_LIST
from opportunities.access import opportunities_visible_to, sees_amounts
from opportunities.models import EventKind, Opportunity, OpportunityEvent, OpportunityStatus

CUSTOMER_PAGE = "customers.customer"  # customers.views.PAGE
LEAD_PAGE = "leads.lead"  # leads.views.PAGE
SHOWN = 50


def money(value: Decimal | None) -> str:
    """An amount in CNY as the pages show it: ¥480,000 (cents only when there are)."""
    if value is None:
        return "—"
    if value == value.to_integral_value():
        return f"¥{value:,.0f}"
    return f"¥{value:,.2f}"


def _status(code: str) -> str:
    try:
        return str(OpportunityStatus(code).label)
    except ValueError:
        return code or "—"


def event_text(event: OpportunityEvent, *, amounts: bool, stage_names: dict | None = None):
    """What a history entry says (its kind's label is shown apart): the stages moved
    between, the amount before and after (`amounts`: else only that it changed), the
    validity, the approval, a refused move and how many actions it missed."""
    kind = event.kind
    detail = event.detail or {}
    if kind == EventKind.CREATED:
        return _("Opened in %(stage)s") % {"stage": event.to_stage or "—"}
    if kind == EventKind.STAGE:
        return f"{event.from_stage or '—'} → {event.to_stage or '—'}"
    if kind == EventKind.STATUS:
        return f"{_status(event.from_status)} → {_status(event.to_status)}"
    if kind == EventKind.AMOUNT:
        if not amounts:
            return _("The amount was changed.")
        return f"{money(event.amount_before)} → {money(event.amount_after)}"
    if kind == EventKind.VALIDITY:
        return _("Now valid") if detail.get("valid") else _("No longer valid")
    if kind == EventKind.REQUESTED:
        return _("A manager's approval of its validity was asked for.")
    if kind == EventKind.DECIDED:
        text = (
            _("Validity approved (%(hours)s h after the request)")
            if detail.get("approved")
            else _("Validity refused (%(hours)s h after the request)")
        ) % {"hours": detail.get("hours", "?")}
        return f"{text}: {detail['note']}" if detail.get("note") else text
    if kind == EventKind.REFUSED:
        target = detail.get("target", "")
        if target == OpportunityStatus.WON:
            where = _("won")
        else:
            where = (stage_names or {}).get(target, target)
        missing = detail.get("missing") or []
        return _("Refused: %(target)s needs %(count)d more action(s).") % {
            "target": where,
            "count": len(missing),
        }
    return ""


class TimelineEntry:
    """An opportunity's history entry as a customer or lead timeline shows it (the
    contract of crm.contributions.TimelineSource: kind, its label, text, at, actor)."""

    lead_id = None
    original_url = None  # the lead timeline's link to an original lead: none here

    def __init__(self, event: OpportunityEvent):
        self.event = event
        self.pk = event.pk
        self.kind = event.kind
        self.at = event.at

    def get_kind_display(self) -> str:
        return _("Opportunity: %(kind)s") % {"kind": self.event.get_kind_display()}

    @property
    def actor(self):
        return self.event.actor.user if self.event.actor is not None else None

    @property
    def text(self) -> str:
        said = event_text(self.event, amounts=False)
        return f"{self.event.opportunity.name} · {said}" if said else self.event.opportunity.name


def _load(ids: list[int]) -> list[TimelineEntry]:
    events = OpportunityEvent.objects.filter(pk__in=ids).select_related(
        "actor__user", "opportunity", "from_stage", "to_stage"
    )
    return [TimelineEntry(event) for event in events]


def _customer_events(customer):
    return OpportunityEvent.objects.filter(opportunity__customer=customer)


def _lead_events(lead):
    return OpportunityEvent.objects.filter(opportunity__origin_lead=lead)


def _rows(member, opportunities: list[Opportunity], visible: set[int]) -> list[dict]:
    amounts = sees_amounts(member)
    return [
        {
            "opportunity": o,
            "visible": o.pk in visible,
            "amount": money(o.amount) if amounts and o.pk in visible else None,
        }
        for o in opportunities
    ]


def _listed(membership, **where) -> tuple[list[Opportunity], set[int], int]:
    """Up to SHOWN of the opportunities matching `where`, newest first, which of them the
    member may open, and how many there are in all."""
    opportunities = list(
        Opportunity.objects.filter(**where)
        .select_related("stage", "owner__user")
        .order_by("-created_at", "-id")[:SHOWN]
    )
    visible = set(
        opportunities_visible_to(membership)
        .filter(pk__in=[o.pk for o in opportunities])
        .values_list("pk", flat=True)
    )
    total = len(opportunities)
    if total == SHOWN:
        total = Opportunity.objects.filter(**where).count()
    return opportunities, visible, total


def customer_panel(request, membership, customer):
    """The customer's opportunities (each linked for a reader who may open it) and the
    button that opens a new one on the customer: newest first, in the panel's window (the
    first 5 then more; the open ones and those active in the last 12 months unless all:
    crm.contributions.PanelWindow)."""
    if membership.role not in OPPORTUNITY_LIST:
        return None
    window = PanelWindow.of(request)
    where = Opportunity.objects.filter(customer=customer)
    if window.since is not None:
        where = where.filter(
            Q(status=OpportunityStatus.OPEN) | Q(last_activity_at__gte=window.since)
        )
    opportunities, has_more = window.rows(
        where.select_related("stage", "owner__user").order_by("-created_at", "-id")
    )
    visible = set(
        opportunities_visible_to(membership)
        .filter(pk__in=[o.pk for o in opportunities])
        .values_list("pk", flat=True)
    )
    can_create = membership.role in OPPORTUNITY_CREATORS
    context = {
        "rows": _rows(membership, opportunities, visible),
        "total": len(opportunities),
        "has_more": has_more,
        "shows_amounts": sees_amounts(membership),
        "create_url": (
            reverse("opportunities:create") + f"?customer={customer.public_id}"
            if can_create
            else ""
        ),
    }
    return "opportunities/panel_customer.html", context


def lead_panel(request, membership, lead):
    """The opportunities that came from the lead and, for a lead verified valid with its
    customer, the button that makes it one."""
    from leads.models import LeadStatus

    if membership.role not in OPPORTUNITY_LIST:
        return None
    opportunities, visible, total = _listed(membership, origin_lead=lead)
    convertible = bool(lead.verified_at and lead.customer_id and lead.status != LeadStatus.INVALID)
    can_create = convertible and membership.role in OPPORTUNITY_CREATORS
    context = {
        "rows": _rows(membership, opportunities, visible),
        "total": total,
        "shows_amounts": sees_amounts(membership),
        "convertible": convertible,
        "create_url": (
            reverse("opportunities:create") + f"?lead={lead.public_id}" if can_create else ""
        ),
    }
    return "opportunities/panel_lead.html", context


def _open_count(membership):
    """The customer page's key figure: its open opportunities (for those who list them)."""
    if membership.role not in OPPORTUNITY_LIST:
        return None
    return contributions.count_of(
        Opportunity.objects.filter(status=OpportunityStatus.OPEN), "customer"
    )


def register() -> None:
    contributions.register_panel(
        CUSTOMER_PAGE,
        customer_panel,
        key="opportunities",
        lazy=True,
        title=gettext_lazy("Opportunities"),
        order=20,
    )
    contributions.register_figure(
        CUSTOMER_PAGE,
        "open_opportunities",
        label=gettext_lazy("Open opportunities"),
        value=_open_count,
        order=20,
    )
    contributions.register_timeline_source(
        CUSTOMER_PAGE, "opportunity", rows=_customer_events, load=_load
    )
    contributions.register_panel(LEAD_PAGE, lead_panel)
    contributions.register_timeline_source(LEAD_PAGE, "opportunity", rows=_lead_events, load=_load)
