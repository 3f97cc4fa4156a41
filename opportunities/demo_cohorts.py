"""The demo's older leads (`opportunities/demo.py` calls it): where the year of closed
history came from, so that the lead-to-contract cycle (F38, /reports/cycle/) has twelve
monthly cohorts with contracts won, lost and still open, and the reps' boards have old
leads to rescue (F41).

- every closed history opportunity gets its **origin lead**: verified valid on the day
  its cycle started, by the customer's owner, with the verification call's next step and
  one or two follow-ups after it (most within 72 hours), all done;
- each of the last twelve months gets a few more leads that never became an
  opportunity: verified invalid with one of the tenant's reasons, and verified valid but
  left alone since (their last follow-up weeks ago: below 75 on the activity index),
  many more of them before the last six months than since.

Written as stored (bulk inserts, no service: the leads' story already shows the real
paths), consistent with what the leads' story guarantees: touches and timeline entries
match, every step is closed, so the board and the SLA sweep leave them alone.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.utils import timezone

from customers.models import Contact, Customer, Interaction, InteractionKind
from leads.models import (
    Channel,
    ChannelType,
    InvalidReason,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    SourceGrade,
    Verification,
)

SEED = 20261203
MONTHS = 12
INVALID_PER_MONTH = 5
# Valid leads left alone: many in the months older than half a year, few since (the
# process brief 000's company fixed: 37 % still open after 120 days, then 11 %).
LEFT_OPEN_EARLIER = 9
LEFT_OPEN_RECENT = 2
NAMES = "王李张刘陈杨赵黄周吴"


class OriginLeads:
    def __init__(self, tenant, action, now: datetime):
        self.tenant = tenant
        self.action = action
        self.now = now
        self.rnd = random.Random(SEED)  # noqa: S311 — demo data, not secrets
        self.channels = list(Channel.objects.exclude(type=ChannelType.HELPDESK).order_by("id"))
        self.reasons = list(InvalidReason.objects.filter(is_active=True).order_by("id"))
        self.contacts: dict[int, Contact] = {}
        self.names: dict[int, str] = {}  # member id -> display name
        self.events: list[LeadEvent] = []
        self.interactions: list[Interaction] = []
        self.made = 0

    def _contact(self, customer: Customer) -> Contact:
        if customer.pk not in self.contacts:
            self.contacts[customer.pk] = Contact.objects.filter(customer=customer).first()
        return self.contacts[customer.pk]

    def valid(self, customer: Customer, screened: datetime, *, quiet_since=None) -> Lead:
        """A lead of `customer`'s owner verified valid at `screened`, followed up after;
        with `quiet_since`, its last follow-up is then (nothing since)."""
        rnd = self.rnd
        owner = customer.owner
        contact = self._contact(customer)
        created = screened - timedelta(hours=rnd.randint(1, 40))
        assigned = created + timedelta(minutes=rnd.randint(3, 40))
        first = screened + timedelta(hours=rnd.randint(20, 60) if rnd.random() < 0.7 else 90)
        follow_ups = [first]
        if quiet_since is not None:
            follow_ups = sorted({min(first, quiet_since), quiet_since})
        elif rnd.random() < 0.5:
            follow_ups.append(first + timedelta(days=rnd.randint(3, 10)))
        follow_ups = [at for at in follow_ups if at < self.now] or [screened]
        verification = rnd.choice([Verification.VALID_VISIT, Verification.VALID_MORE_INFO])
        lead = self._lead(
            company=customer.name,
            contact_name=contact.name if contact else "",
            owner=owner,
            created=created,
            assigned=assigned,
            status=LeadStatus.VALID,
            verification=verification,
            verified_at=screened,
            customer=customer,
            contact=contact,
            touch_count=1 + len(follow_ups),
            last_touch_at=follow_ups[-1],
        )
        self._event(lead, LeadEventKind.VERIFIED, screened, owner, {
            "outcome": verification,
            "customer_name": customer.name,
            "customer_created": False,
        })  # fmt: skip
        self._step(lead, InteractionKind.VERIFICATION, screened, follow_ups[0])
        for i, at in enumerate(follow_ups):
            done = follow_ups[i + 1] if i + 1 < len(follow_ups) else at + timedelta(days=2)
            self._step(lead, InteractionKind.FOLLOW_UP, at, min(done, self.now))
        return lead

    def invalid(self, customer_name: str, owner, screened: datetime) -> Lead:
        rnd = self.rnd
        created = screened - timedelta(hours=rnd.randint(1, 20))
        reason = rnd.choice(self.reasons) if self.reasons else None
        verification = rnd.choice([Verification.INVALID_CONTACT, Verification.INVALID_NOT_TARGET])
        lead = self._lead(
            company=customer_name,
            contact_name=rnd.choice(NAMES) + "先生",
            owner=owner,
            created=created,
            assigned=created + timedelta(minutes=rnd.randint(3, 40)),
            status=LeadStatus.INVALID,
            verification=verification,
            verified_at=screened,
            invalid_reason=reason,
            touch_count=1,
            last_touch_at=screened,
        )
        data = {"outcome": verification, "reason": reason.name if reason else ""}
        self._event(lead, LeadEventKind.VERIFIED, screened, owner, data)
        return lead

    def months(self, customers: list[Customer], reps: list) -> int:
        """The leads of the last MONTHS months that never became an opportunity."""
        rnd = self.rnd
        made = 0
        for month in range(MONTHS):
            base = self.now - timedelta(days=35 + 30 * month)
            for _ in range(INVALID_PER_MONTH):
                at = base - timedelta(days=rnd.randint(0, 28), hours=rnd.randint(0, 9))
                self.invalid(f"{rnd.choice(NAMES)}氏贸易商行", rnd.choice(reps), at)
                made += 1
            for _ in range(LEFT_OPEN_EARLIER if month >= 6 else LEFT_OPEN_RECENT):
                at = base - timedelta(days=rnd.randint(0, 28), hours=rnd.randint(0, 9))
                quiet = min(at + timedelta(days=rnd.randint(5, 40)), self.now - timedelta(days=20))
                self.valid(rnd.choice(customers), at, quiet_since=max(quiet, at))
                made += 1
        return made

    def flush(self) -> int:
        """Write the queued timeline entries and steps; how many leads were made."""
        LeadEvent.objects.bulk_create(self.events, batch_size=500)
        Interaction.objects.bulk_create(self.interactions, batch_size=500)
        self.events, self.interactions = [], []
        return self.made

    # -- rows ---------------------------------------------------------------------------

    def _lead(self, *, owner, created, assigned, verified_at, **fields) -> Lead:
        rnd = self.rnd
        channel = rnd.choice(self.channels)
        lead = Lead.objects.create(
            tenant=self.tenant,
            channel=channel,
            source_grade=rnd.choice(SourceGrade.values),
            owner=owner,
            created_at=created,
            assigned_at=assigned,
            dispatch_round=1,
            first_touch_at=verified_at,
            first_touch_late=verified_at - assigned > timedelta(hours=24),
            verified_at=verified_at,
            verified_by=owner,
            **fields,
        )
        self.made += 1
        self._event(lead, LeadEventKind.INTAKE, created, None, {"channel": channel.name})
        if owner.pk not in self.names:
            self.names[owner.pk] = owner.user.get_full_name() or owner.user.get_username()
        self._event(lead, LeadEventKind.ASSIGNED, assigned, None, {"owner": self.names[owner.pk]})
        return lead

    def _event(self, lead: Lead, kind: str, at: datetime, by, data: dict) -> None:
        self.events.append(
            LeadEvent(
                tenant=self.tenant,
                lead=lead,
                kind=kind,
                at=at,
                actor=by.user if by is not None else None,
                data=data,
            )
        )

    def _step(self, lead: Lead, kind: str, at: datetime, done: datetime) -> None:
        local = timezone.localtime(at, self.tenant.tzinfo).date()
        interaction = Interaction(
            tenant=self.tenant,
            kind=kind,
            lead=lead,
            customer=lead.customer,
            contact=lead.contact,
            by=lead.owner,
            at=at,
            channel="phone",
            note="回访" if kind == InteractionKind.FOLLOW_UP else "",
            next_action=self.action,
            next_action_due=local + timedelta(days=2),
            next_done_at=max(done, at),
        )
        self.interactions.append(interaction)
        if kind == InteractionKind.FOLLOW_UP:
            self._event(lead, LeadEventKind.FOLLOW_UP, at, lead.owner, {
                "interaction": str(interaction.public_id),
                "channel": "phone",
                "talk_tags": [],
                "pains": [],
                "roles": [],
                "note": interaction.note,
                "next_action": self.action.name,
                "next_action_due": interaction.next_action_due.isoformat(),
                "suggested_status": "",
                "closes_loop": False,
            })  # fmt: skip
