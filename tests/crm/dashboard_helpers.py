"""A month of leads, opportunities and tickets written row by row, for the dashboard and
drill-down tests, and their figures counted by hand.

The period is March 2026 of tenant a (Asia/Shanghai); the previous period of the same
length is 29 January … 28 February. Two regions (浙江, 江苏) and rows without one; two
reps (the side's rep, and 李雷), and rows without an owner. Tenant b has rows of its own
in the same days, never counted for a.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Contact, Customer
from leads.models import Lead
from opportunities.models import Opportunity, OpportunityStatus, Stage
from opportunities.setup import ensure_defaults
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel
from tests.service_feedback.helpers import upsert

START, END = date(2026, 3, 1), date(2026, 3, 31)
PREVIOUS = (date(2026, 2, 1), date(2026, 2, 28))  # March's: February (crm.metrics)
PERIOD = {"start": START.isoformat(), "end": END.isoformat()}
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZJ, JS = "浙江", "江苏"


def at(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


@dataclass
class Seeded:
    rep: object
    rep2: object
    leads: dict = field(default_factory=dict)  # name -> Lead
    opportunities: dict = field(default_factory=dict)
    tickets: dict = field(default_factory=dict)


def lead(side, channel, name, *, province="", owner=None, created, verdict="", after=None):
    fields = {}
    if verdict:
        fields = {"verification": verdict, "verified_at": created + after}
    with tenant_context(side.tenant):
        return Lead.objects.create(
            tenant=side.tenant,
            channel=channel,
            company=f"{name} 液压",
            contact_name="王工",
            phone="+8613812345678",
            province=province,
            owner=owner,
            created_at=created,
            **fields,
        )


def customer(side, name, *, province="", owner=None, phone=""):
    with tenant_context(side.tenant):
        found = Customer.objects.create(
            tenant=side.tenant, name=name, province=province, owner=owner
        )
        if phone:
            Contact.objects.create(
                tenant=side.tenant,
                customer=found,
                name="王工",
                phone=phone,
                phone_key="+86" + phone,
            )
        return found


def opportunity(side, found_customer, owner, *, created, amount=None, won=None):
    with tenant_context(side.tenant):
        ensure_defaults()
        fields = {"probability": 10}
        if won is not None:
            fields = {"status": OpportunityStatus.WON, "won_at": won, "probability": 100}
        return Opportunity.objects.create(
            tenant=side.tenant,
            name=f"{found_customer.name} 机会",
            customer=found_customer,
            owner=owner,
            stage=Stage.objects.order_by("position").first(),
            amount=None if amount is None else Decimal(amount),
            created_at=created,
            **fields,
        )


def seed(world) -> Seeded:
    a = world.a
    rep2 = MembershipFactory(
        tenant=a.tenant, role=Role.REP, user__username="alpha-rep2", user__first_name="李雷"
    )
    out = Seeded(rep=a.rep, rep2=rep2)
    channel = make_channel(a.tenant)
    hour = timedelta(hours=1)
    # Leads: 6 delivered in March (浙江 3, 江苏 2, none 1), 2 valid within 24 h, 1 invalid.
    for name, kwargs in {
        "L1": dict(province=ZJ, owner=a.rep, created=at(3, 1, 0, 0, 1), verdict="valid_visit"),
        "L2": dict(province=ZJ, owner=a.rep, created=at(3, 10), verdict="invalid_contact"),
        "L3": dict(province=ZJ, owner=a.rep, created=at(3, 31, 23, 59), verdict="valid_more_info"),
        "L4": dict(province=JS, owner=rep2, created=at(3, 15, 9), verdict="valid_visit"),
        "L5": dict(province=JS, owner=rep2, created=at(3, 16, 9)),
        "L6": dict(created=at(3, 20)),
        # The previous period: 2 delivered, 1 valid within 24 h, 1 invalid.
        "L7": dict(province=ZJ, owner=a.rep, created=at(2, 20), verdict="valid_visit"),
        "L8": dict(
            province=JS, owner=rep2, created=at(2, 28, 23, 59, 59), verdict="invalid_not_target"
        ),
        # Outside both.
        "L9": dict(province=ZJ, owner=a.rep, created=at(4, 1, 0, 0, 0), verdict="valid_visit"),
        "L10": dict(province=ZJ, owner=a.rep, created=at(1, 31, 23, 59), verdict="valid_visit"),
    }.items():
        after = 30 * hour if name == "L3" else 2 * hour
        out.leads[name] = lead(a, channel, name, after=after, **kwargs)
    # Opportunities: 3 opened in March (浙江 2, 江苏 1); 3 won in March (浙江 1, 江苏 2)
    # for ¥380,000 (one without an amount). Previous: 2 opened, 1 won for ¥5,000.
    c1 = customer(a, "恒力", province=ZJ, owner=a.rep)
    c2 = customer(a, "华东", province=JS, owner=rep2)
    c3 = customer(a, "无省", owner=a.rep)
    for name, args, kwargs in (
        ("O1", (c1, a.rep), dict(created=at(3, 2), amount="10000")),
        ("O2", (c1, a.rep), dict(created=at(3, 3), amount="300000", won=at(3, 20))),
        ("O3", (c2, rep2), dict(created=at(2, 10), amount="80000", won=at(3, 5))),
        ("O4", (c2, rep2), dict(created=at(3, 6), won=at(3, 25))),
        ("O5", (c3, a.rep), dict(created=at(2, 15), amount="5000", won=at(2, 20))),
        ("O6", (c1, a.rep), dict(created=at(4, 1, 0), amount="7", won=at(4, 1, 0))),
    ):
        out.opportunities[name] = opportunity(a, *args, **kwargs)
    # Tickets: 4 opened in March (浙江 2, 江苏 2), 1 repeat, 3 with a first response, 2
    # of them within the 15 minutes. Previous: 1, responded within target.
    customer(a, "医院甲", owner=a.rep, phone="13800000001")
    customer(a, "医院乙", owner=rep2, phone="13800000002")
    minute = timedelta(minutes=1)
    for name, opened, kwargs in (
        ("K1", at(3, 3), dict(province=ZJ, phone="13800000001", fault_code="E1", first=10)),
        ("K2", at(3, 8), dict(province=ZJ, phone="13800000001", fault_code="E1", first=40)),
        ("K3", at(3, 12), dict(province=JS, phone="13800000002", fault_code="E7")),
        ("K4", at(3, 20), dict(province=JS, phone="13900009999", first=5)),
        ("K5", at(2, 20), dict(province=ZJ, phone="13800000001", fault_code="E2", first=5)),
        ("K6", at(4, 2), dict(province=ZJ, phone="13800000001", fault_code="E1", first=5)),
    ):
        first = kwargs.pop("first", None)
        out.tickets[name] = upsert(
            a,
            name,
            opened_at=opened,
            first_response_at=opened + first * minute if first is not None else None,
            **kwargs,
        )
    # Tenant b: the same kinds of rows in the same days, in the same regions.
    b = world.b
    lead(b, make_channel(b.tenant), "B1", province=ZJ, owner=b.rep, created=at(3, 5))
    opportunity(
        b,
        customer(b, "乙方", province=ZJ, owner=b.rep),
        b.rep,
        created=at(3, 5),
        amount="9",
        won=at(3, 6),
    )
    upsert(b, "BK1", opened_at=at(3, 5), province=ZJ, first_response_at=at(3, 5, 10, 1))
    return out


# The figures by hand: {metric key: (all, 浙江, 江苏, no region)} for March, and the
# previous period's totals.
REGIONS = {
    "leads.delivered": (6, 3, 2, 1),
    "leads.valid_24h": (2, 1, 1, 0),
    "leads.invalid": (1, 1, 0, 0),
    "opportunities.created": (3, 2, 1, 0),
    "opportunities.won": (3, 1, 2, 0),
    "opportunities.won_amount": (Decimal("380000"), Decimal("300000"), Decimal("80000"), 0),
    "service.tickets": (4, 2, 2, 0),
    "service.repeat_complaints": (1, 1, 0, 0),
    "service.first_responded": (3, 2, 1, 0),
    "service.first_response_in_target": (2, 1, 1, 0),
}
PREVIOUS_TOTALS = {
    "leads.delivered": 2,
    "leads.valid_24h": 1,
    "leads.invalid": 1,
    "opportunities.created": 2,
    "opportunities.won": 1,
    "opportunities.won_amount": Decimal("5000"),
    "service.tickets": 1,
    "service.repeat_complaints": 0,
    "service.first_responded": 1,
    "service.first_response_in_target": 1,
}
# {metric key: (rep, 李雷, no owner)} for March (a ticket's rep is its customer's owner).
REPS = {
    "leads.delivered": (3, 2, 1),
    "leads.valid_24h": (1, 1, 0),
    "leads.invalid": (1, 0, 0),
    "opportunities.created": (2, 1, 0),
    "opportunities.won": (1, 2, 0),
    "opportunities.won_amount": (Decimal("300000"), Decimal("80000"), 0),
    "service.tickets": (2, 1, 1),
    "service.repeat_complaints": (1, 0, 0),
    "service.first_responded": (2, 0, 1),
    "service.first_response_in_target": (1, 0, 1),
}


def now_is(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()), SHANGHAI)
