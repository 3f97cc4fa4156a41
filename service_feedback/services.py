"""Tickets in (F27): the upsert a helpdesk event becomes, the matching to a customer, the
keyword flags, the minutes, and the link made by hand (remembered). The kernel's write
contract (crm.services): keyword arguments, checked input, one transaction, audited when
a person acts.

`tickets_write` is what the inbox's helpdesk handler calls for a batch of events (after
their preset mapped each payload to `TicketData`): a few statements for the batch. The
demo, the bench and the tests call `ticket_upsert`, its batch of one. After the writes it
hands the batch to `service_feedback.effects.tickets_saved` (notifications and quality
clusters, once per batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.normalize import parse_phone
from crm.roles import CUSTOMER_ALL
from crm.services import actor_user, check_tenant
from crm.tenancy import current_tenant
from customers.models import Contact, Customer
from service_feedback import events
from service_feedback import minutes as service_minutes
from service_feedback.models import (
    FlagKeyword,
    FlagKind,
    LinkKey,
    MatchKey,
    ServiceSettings,
    Ticket,
    TicketLink,
    TicketStatus,
)

DEFAULT_FLAG_KEYWORDS = {
    FlagKind.UPSELL: ("增购", "扩容", "再买", "加购", "追加"),
    FlagKind.REFERRAL: ("推荐", "介绍"),
    FlagKind.CHURN: ("换供应商", "投诉", "退货", "不再合作"),
}
# E-mail domains shared by many people: never a customer's domain.
FREE_MAIL = frozenset(
    {
        "qq.com", "163.com", "126.com", "sina.com", "sina.cn", "sohu.com", "yeah.net",
        "foxmail.com", "aliyun.com", "139.com", "189.cn", "outlook.com", "hotmail.com",
        "gmail.com", "yahoo.com", "icloud.com", "live.com",
    }
)  # fmt: skip
# Who links a ticket to a customer by hand: service agents, managers and admins.
LINKERS = CUSTOMER_ALL


def settings_for(tenant: Tenant) -> ServiceSettings:
    """The tenant's service settings (created with the defaults on first use)."""
    return ServiceSettings.for_tenant(tenant)


def flag_keywords(tenant: Tenant) -> list[FlagKeyword]:
    """The tenant's active flag keywords (the defaults created on first use): one query
    once the tenant has its list."""
    keywords = list(FlagKeyword.objects.all())
    if not keywords:
        FlagKeyword.objects.bulk_create(
            [
                FlagKeyword(tenant=tenant, kind=kind, keyword=word)
                for kind, words in DEFAULT_FLAG_KEYWORDS.items()
                for word in words
            ],
            ignore_conflicts=True,
        )
        keywords = list(FlagKeyword.objects.all())
    return [k for k in keywords if k.is_active]


def flags_of(text: str, keywords: list[FlagKeyword]) -> tuple[list[str], list[str]]:
    """(flags, the words that raised them) of a ticket's text, in FlagKind order."""
    folded = (text or "").casefold()
    kinds, words = set(), []
    for keyword in keywords:
        if keyword.keyword and keyword.keyword.casefold() in folded:
            kinds.add(keyword.kind)
            words.append(keyword.keyword)
    return [k for k in FlagKind.values if k in kinds], sorted(set(words))


# -- matching -------------------------------------------------------------------------------


@dataclass
class Match:
    customer: Customer | None = None
    contact: Contact | None = None
    key: str = MatchKey.NONE
    value: str = ""


def phone_key(raw: str) -> str:
    parsed = parse_phone(raw) if raw else None
    return parsed.e164 if parsed is not None else ""


def email_key(raw: str) -> str:
    value = (raw or "").strip().lower()
    return value if "@" in value else ""


def match(*, customer_code: str = "", phone: str = "", email: str = "") -> Match:
    """The customer a ticket belongs to, by customer code, then phone (a remembered link,
    then a contact's phone), then e-mail (the same), then the e-mail's domain (one
    customer's contacts use it, and it is no free-mail domain); the key that matched is
    kept. An empty Match when none does. `match_many` of one."""
    return match_many([(customer_code, phone, email)])[0]


def _domain(email: str) -> str:
    domain = email.rsplit("@", 1)[1] if "@" in email else ""
    return domain if domain and domain not in FREE_MAIL else ""


def _like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _domain_customers(domains: list[str]) -> dict[str, Customer]:
    """Each domain used by the contacts of exactly one customer → that customer: one
    statement (a LATERAL look-up of at most two customers per domain)."""
    if not domains:
        return {}
    contact, customer = Contact._meta.db_table, Customer._meta.db_table
    sql = (
        f"SELECT c.*, found.domain AS matched_domain FROM ("  # noqa: S608
        " SELECT d.domain, min(x.customer_id) AS customer_id"
        " FROM unnest(%s::text[], %s::text[]) AS d(domain, pattern)"
        " CROSS JOIN LATERAL (SELECT DISTINCT ct.customer_id"
        f"  FROM {contact} ct WHERE ct.tenant_id = %s AND UPPER(ct.email::text) LIKE d.pattern"
        "  LIMIT 2) x"
        " GROUP BY d.domain HAVING count(*) = 1) found"
        f" JOIN {customer} c ON c.id = found.customer_id"
    )
    # As `email__iendswith`: UPPER(email) LIKE '%' || UPPER(escaped "@" + domain).
    patterns = ["%" + _like_escaped("@" + d).upper() for d in domains]
    rows = Customer.objects.raw(sql, [domains, patterns, current_tenant().pk])
    return {row.matched_domain: row for row in rows}


def match_many(queries: list[tuple[str, str, str]]) -> list[Match]:
    """`match()` of each (customer_code, phone, email), in a constant number of queries:
    the codes in one, the remembered links in one, the contacts by phone in one, by
    e-mail in one, and the domains of the rest in one. Where several rows match a key,
    the first by their model's ordering wins, as `.first()` would take."""
    codes = {(c or "").strip() for c, _p, _e in queries} - {""}
    by_code: dict[str, Customer] = {}
    if codes:
        for customer in Customer.objects.filter(code__in=codes).order_by("name", "id"):
            by_code.setdefault(customer.code, customer)
    phones = {p for _c, p, _e in queries if p}
    emails = {e for _c, _p, e in queries if e}
    links: dict[tuple[str, str], TicketLink] = {}
    by_phone: dict[str, Contact] = {}
    by_email: dict[str, Contact] = {}
    if phones or emails:
        wanted = Q(key=LinkKey.PHONE, value__in=phones) | Q(key=LinkKey.EMAIL, value__in=emails)
        for link in TicketLink.objects.filter(wanted).select_related("customer"):
            links[(link.key, link.value)] = link
    if phones:
        for contact in (
            Contact.objects.filter(phone_key__in=phones)
            .select_related("customer")
            .order_by("name", "id")
        ):
            by_phone.setdefault(contact.phone_key, contact)
    if emails:
        for contact in (
            Contact.objects.annotate(email_upper=Upper("email"))
            .filter(email_upper__in={e.upper() for e in emails})
            .select_related("customer")
            .order_by("name", "id")
        ):
            by_email.setdefault(contact.email_upper, contact)
    found: list[Match | None] = []
    for code, phone, email in queries:
        code = (code or "").strip()
        if code in by_code:
            found.append(Match(by_code[code], None, MatchKey.CODE, code))
            continue
        result = None
        for key, value, contacts in (
            (LinkKey.PHONE, phone, by_phone),
            (LinkKey.EMAIL, email, by_email),
        ):
            if not value:
                continue
            link = links.get((key, value))
            if link is not None:
                result = Match(link.customer, None, MatchKey.LINK, value)
                break
            contact = contacts.get(value if key == LinkKey.PHONE else value.upper())
            if contact is not None:
                kind = MatchKey.PHONE if key == LinkKey.PHONE else MatchKey.EMAIL
                result = Match(contact.customer, contact, kind, value)
                break
        found.append(result)
    left = {_domain(q[2] or "") for q, f in zip(queries, found, strict=True) if f is None}
    customers = _domain_customers(sorted(left - {""}))
    return [
        f
        if f is not None
        else (
            Match(customers[d], None, MatchKey.DOMAIN, d)
            if (d := _domain(q[2] or "")) in customers
            else Match()
        )
        for q, f in zip(queries, found, strict=True)
    ]


# -- the upsert -----------------------------------------------------------------------------


@dataclass
class TicketData:
    """A ticket as a helpdesk preset maps it (opportunities of every preset: the same)."""

    external_id: str
    status: str = TicketStatus.OPEN
    subject: str = ""
    text: str = ""
    opened_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    customer_code: str = ""
    requester_name: str = ""
    phone: str = ""
    email: str = ""
    product_line: str = ""
    product_model: str = ""
    fault_code: str = ""
    province: str = ""
    city: str = ""
    sentiment: int | None = None
    nps: int | None = None
    satisfaction: int | None = None
    extra: dict = field(default_factory=dict)


def _check(data: TicketData) -> None:
    errors = {}
    if not (data.external_id or "").strip():
        errors["external_id"] = _("The ticket has no id.")
    if data.status not in TicketStatus.values:
        errors["status"] = _("Unknown ticket status %(status)r.") % {"status": data.status}
    for name, low, high in (("sentiment", -100, 100), ("nps", 0, 10), ("satisfaction", 1, 5)):
        value = getattr(data, name)
        if value is not None and not low <= value <= high:
            errors[name] = _("%(name)s must be between %(low)d and %(high)d.") % {
                "name": name,
                "low": low,
                "high": high,
            }
    if errors:
        raise ValidationError(errors)


@dataclass
class TicketItem:
    """One ticket of a batch written by `tickets_write`: what to write, then what was
    written (`ticket`, `created`, `new_flags`: the flags it did not have before)."""

    channel: object
    data: TicketData
    event: object = None
    ticket: Ticket | None = None
    created: bool = False
    new_flags: list[str] = field(default_factory=list)
    status_before: str | None = None  # None: the ticket is new

    @property
    def external_id(self) -> str:
        return self.data.external_id.strip()[:100]

    @property
    def key(self) -> tuple[int, str]:
        return (self.channel.pk, self.external_id)


def ticket_lock_key(tenant_id: int, channel_id: int, external_id: str) -> str:
    """The advisory-lock key of one ticket (crm.tenancy.advisory_lock's form): whoever
    writes the ticket takes it, alone or in a batch."""
    return f"service_feedback.ticket:{tenant_id}:{channel_id}:{external_id}"


def ticket_runs(items: list[TicketItem]):
    """The batch in runs without two deliveries of one ticket: a later delivery of a
    ticket starts a new run, written after the first, as one-by-one processing would."""
    run: list[TicketItem] = []
    seen: set = set()
    for item in items:
        if item.key in seen:
            yield run
            run, seen = [], set()
        run.append(item)
        seen.add(item.key)
    if run:
        yield run


# What a (re-)delivery writes; `alert` is the quality alerts' (alerts.check_tickets).
WRITTEN = (
    "event", "status", "subject", "text", "opened_at", "first_response_at", "resolved_at",
    "customer_code", "requester_name", "phone_key", "email", "product_line", "product_model",
    "fault_code", "province", "city", "sentiment", "nps", "satisfaction",
    "first_response_minutes", "resolution_minutes", "duration_issue", "flags", "flag_words",
    "customer", "contact", "match_key", "match_value", "updated_at",
)  # fmt: skip


def _fill(ticket: Ticket, item: TicketItem, now, settings: ServiceSettings, keywords) -> None:
    data = item.data
    ticket.event = item.event if item.event is not None else ticket.event
    ticket.status = data.status
    ticket.subject = (data.subject or "")[:200]
    ticket.text = data.text or ""
    ticket.opened_at = data.opened_at or ticket.opened_at or now
    ticket.first_response_at = data.first_response_at
    ticket.resolved_at = data.resolved_at
    ticket.customer_code = (data.customer_code or "")[:60]
    ticket.requester_name = (data.requester_name or "")[:100]
    ticket.phone_key = phone_key(data.phone)
    ticket.email = email_key(data.email)[:254]
    ticket.product_line = (data.product_line or "")[:100]
    ticket.product_model = (data.product_model or "")[:100]
    ticket.fault_code = (data.fault_code or "")[:60]
    ticket.province = (data.province or "")[:30]
    ticket.city = (data.city or "")[:30]
    ticket.sentiment, ticket.nps, ticket.satisfaction = data.sentiment, data.nps, data.satisfaction
    ticket.first_response_minutes, first_issue = service_minutes.minutes(
        settings, ticket.opened_at, ticket.first_response_at
    )
    ticket.resolution_minutes, resolution_issue = service_minutes.minutes(
        settings, ticket.opened_at, ticket.resolved_at
    )
    issues = [
        f"{what}: {issue}"
        for what, issue in (("first response", first_issue), ("resolution", resolution_issue))
        if issue
    ]
    ticket.duration_issue = "; ".join(issues)[:120]
    ticket.flags, ticket.flag_words = flags_of(f"{ticket.subject}\n{ticket.text}", keywords)
    ticket.updated_at = now


def tickets_write(
    *,
    tenant: Tenant,
    items: list[TicketItem],
    now: datetime | None = None,
    settings: ServiceSettings | None = None,
    keywords: list[FlagKeyword] | None = None,
) -> list[TicketItem]:
    """Create or update the tickets of `items` (checked with `check_ticket_data`; one
    run of `ticket_runs`: no ticket twice) in a few statements, then their effects once
    for the run (effects.tickets_saved). Runs in the caller's transaction; raises if a
    row cannot be written (the caller's savepoint rolls the run back).

    Statements: the tickets' locks (one, sorted), the existing tickets (one), the
    matching (`match_many`), one INSERT of the new tickets and one UPDATE of the others,
    then the effects'. The locks are `ticket_upsert`'s own, so a ticket written here and
    the same ticket written alone (the demo, a concurrent batch) serialise."""
    from service_feedback import alerts, effects

    if not items:
        return items
    if len({item.key for item in items}) != len(items):
        raise ValueError("a run holds each ticket once: split the batch with ticket_runs()")
    check_tenant(tenant, *(item.channel for item in items))
    now = now or timezone.now()
    settings = settings or settings_for(tenant)
    keywords = flag_keywords(tenant) if keywords is None else keywords
    alerts.advisory_locks(ticket_lock_key(tenant.pk, *item.key) for item in items)
    wanted = Q()
    for channel_id in {item.channel.pk for item in items}:
        ids = [item.external_id for item in items if item.channel.pk == channel_id]
        wanted |= Q(channel_id=channel_id, external_id__in=ids)
    existing = {(t.channel_id, t.external_id): t for t in Ticket.objects.filter(wanted)}
    saved, rematch = [], []
    for item in items:
        ticket = existing.get(item.key)
        item.created = ticket is None
        before = None if item.created else alerts.state_of(ticket)
        if item.created:
            ticket = Ticket(
                tenant=tenant,
                channel=item.channel,
                external_id=item.external_id,
                received_at=now,
            )
        old_flags = set(ticket.flags or [])
        item.status_before = None if item.created else ticket.status
        _fill(ticket, item, now, settings, keywords)
        item.ticket = ticket
        item.new_flags = [f for f in ticket.flags if f not in old_flags]
        if ticket.customer_id is None or ticket.match_key not in (MatchKey.MANUAL, MatchKey.LINK):
            rematch.append(ticket)
        saved.append((ticket, before))
    found = match_many([(t.customer_code, t.phone_key, t.email) for t in rematch])
    for ticket, one in zip(rematch, found, strict=True):
        if one.customer is not None or ticket.customer_id is None:
            ticket.customer, ticket.contact = one.customer, one.contact
            ticket.match_key, ticket.match_value = one.key, one.value[:254]
    created = [item.ticket for item in items if item.created]
    updated = [item.ticket for item in items if not item.created]
    if created:
        Ticket.objects.bulk_create(created)
    if updated:
        Ticket.objects.bulk_update(updated, WRITTEN)
    events.emit_written(
        [(i.ticket, i.created, i.status_before, i.new_flags) for i in items], at=now
    )
    effects.tickets_saved(
        tenant,
        [(t, before, item.new_flags) for (t, before), item in zip(saved, items, strict=True)],
        settings=settings,
        now=now,
    )
    return items


def check_ticket_data(data: TicketData) -> None:
    """ValidationError when `data` cannot be a ticket (no id, unknown status, a score out
    of its range)."""
    _check(data)


def ticket_upsert(
    *,
    tenant: Tenant,
    channel,
    data: TicketData,
    event=None,
    now: datetime | None = None,
    settings: ServiceSettings | None = None,
    keywords: list[FlagKeyword] | None = None,
) -> tuple[Ticket, bool, list[str]]:
    """Create the channel's ticket `data.external_id`, or update it on a re-delivery:
    (ticket, created, flags it did not have before). A ticket linked by hand keeps its
    customer; an unmatched one is matched again. Durations that are negative or absurd
    are kept out (`duration_issue` says why). `settings` and `keywords`: the tenant's,
    when the caller read them once for a batch of tickets. The batch of one of
    `tickets_write`, which the inbox's helpdesk handler calls for its events."""
    check_tenant(tenant, channel)
    _check(data)
    item = TicketItem(channel=channel, data=data, event=event)
    with transaction.atomic():
        tickets_write(tenant=tenant, items=[item], now=now, settings=settings, keywords=keywords)
    return item.ticket, item.created, item.new_flags


# -- linking by hand ------------------------------------------------------------------------


def ticket_link(
    *,
    tenant: Tenant,
    acting_member: Membership,
    ticket: Ticket,
    customer: Customer,
    remember: bool = True,
) -> Ticket:
    """Link an unmatched (or wrongly matched) ticket to `customer`. With `remember`, its
    phone and e-mail are linked to the customer too, so the next ticket from them matches
    by itself, and the waiting tickets from them are linked now."""
    check_tenant(tenant, ticket, customer)
    if acting_member.role not in LINKERS:
        raise PermissionDenied(_("Service agents and managers link tickets to customers."))
    if customer is None:
        raise ValidationError({"customer": _("Choose the customer.")})
    from service_feedback import alerts, effects

    with transaction.atomic():
        before = ticket.customer_id
        ticket.customer, ticket.contact = customer, None
        ticket.match_key, ticket.match_value = MatchKey.MANUAL, ""
        ticket.updated_at = timezone.now()
        ticket.save(update_fields=["customer", "contact", "match_key", "match_value", "updated_at"])
        linked = [ticket]
        if remember:
            keys = [(LinkKey.PHONE, ticket.phone_key), (LinkKey.EMAIL, ticket.email)]
            for key, value in keys:
                if not value:
                    continue
                TicketLink.objects.update_or_create(
                    tenant=tenant,
                    key=key,
                    value=value,
                    defaults={"customer": customer, "linked_by": acting_member},
                )
            waiting = Ticket.objects.unmatched().exclude(pk=ticket.pk)
            condition = Q()
            if ticket.phone_key:
                condition |= Q(phone_key=ticket.phone_key)
            if ticket.email:
                condition |= Q(email=ticket.email)
            if condition:
                for other in waiting.filter(condition):
                    value = other.phone_key if other.phone_key == ticket.phone_key else other.email
                    other.customer, other.match_key, other.match_value = (
                        customer,
                        MatchKey.LINK,
                        value,
                    )
                    other.save(update_fields=["customer", "match_key", "match_value"])
                    linked.append(other)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="ticket.link",
            obj=ticket,
            changes={
                "customer": [before, customer.pk],
                "remembered": remember,
                "tickets": len(linked),
            },
        )
        effects.tickets_saved(
            tenant, [(one, alerts.state_of(one), list(one.flags or [])) for one in linked]
        )
    return ticket


# -- effects: the review card's read receipt, closing a quality alert by hand ---------------


def review_mark_read(*, tenant: Tenant, acting_member: Membership, customer: Customer):
    """`acting_member` read the customer's service review card (F28): a ReviewRead covering
    its latest ticket (audited), so the card says read until a newer ticket arrives and
    the managers see who read it when. 409-worthy ValidationError without tickets."""
    from service_feedback import review
    from service_feedback.models import ReviewRead

    check_tenant(tenant, customer)
    latest = review.recent_tickets(customer).first()
    if latest is None:
        raise ValidationError(_("The customer has no recent service ticket to review."))
    with transaction.atomic():
        read = ReviewRead.objects.create(
            tenant=tenant, customer=customer, member=acting_member, last_ticket=latest
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="service_review.read",
            obj=customer,
            changes={"last_ticket": latest.external_id, "read_at": read.read_at.isoformat()},
        )
    return read


def alert_close(*, tenant: Tenant, acting_member: Membership, alert, note: str):
    """Close an open quality alert by hand with a note (managers and admins)."""
    from crm.roles import MANAGERS

    check_tenant(tenant, alert)
    if acting_member.role not in MANAGERS:
        raise PermissionDenied(_("Managers and admins close quality alerts."))
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say why the alert is closed.")})
    if len(note) > 300:
        raise ValidationError({"note": _("At most 300 characters.")})
    with transaction.atomic():
        alert = type(alert).objects.select_for_update().get(pk=alert.pk)
        if alert.closed_at is not None:
            raise ValidationError(_("The alert is closed already."))
        alert.closed_at = timezone.now()
        alert.closed_by = acting_member
        alert.close_note = note
        alert.save(update_fields=["closed_at", "closed_by", "close_note"])
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="quality_alert.close",
            obj=alert,
            changes={"note": note},
        )
    return alert
