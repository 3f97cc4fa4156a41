"""Tickets in (F27): the upsert a helpdesk event becomes, the matching to a customer, the
keyword flags, the minutes, and the link made by hand (remembered). The kernel's write
contract (crm.services): keyword arguments, checked input, one transaction, audited when
a person acts.

`ticket_upsert` is what the inbox's helpdesk handler calls for each event (after its
preset mapped the payload to `TicketData`); the demo and the bench call it too. After
every save it hands the ticket to `service_feedback.effects.ticket_saved` (the board
items, notifications and quality clusters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.normalize import parse_phone
from crm.roles import CUSTOMER_ALL
from crm.services import actor_user, check_tenant
from crm.tenancy import advisory_lock
from customers.models import Contact, Customer
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
    kept. An empty Match when none does."""
    code = (customer_code or "").strip()
    if code:
        customer = Customer.objects.filter(code=code).first()
        if customer is not None:
            return Match(customer, None, MatchKey.CODE, code)
    for key, value in ((LinkKey.PHONE, phone), (LinkKey.EMAIL, email)):
        if not value:
            continue
        link = TicketLink.objects.filter(key=key, value=value).select_related("customer").first()
        if link is not None:
            return Match(link.customer, None, MatchKey.LINK, value)
        field_name = "phone_key" if key == LinkKey.PHONE else "email__iexact"
        contact = Contact.objects.filter(**{field_name: value}).select_related("customer").first()
        if contact is not None:
            found = MatchKey.PHONE if key == LinkKey.PHONE else MatchKey.EMAIL
            return Match(contact.customer, contact, found, value)
    domain = email.rsplit("@", 1)[1] if "@" in email else ""
    if domain and domain not in FREE_MAIL:
        customers = list(
            Contact.objects.filter(email__iendswith="@" + domain)
            .values_list("customer_id", flat=True)
            .distinct()[:2]
        )
        if len(customers) == 1:
            return Match(Customer.objects.get(pk=customers[0]), None, MatchKey.DOMAIN, domain)
    return Match()


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
    when the caller read them once for a batch of tickets."""
    from service_feedback import effects

    check_tenant(tenant, channel)
    _check(data)
    now = now or timezone.now()
    settings = settings or settings_for(tenant)
    keywords = flag_keywords(tenant) if keywords is None else keywords
    external_id = data.external_id.strip()[:100]
    with transaction.atomic():
        # Two deliveries of one ticket at once: one creates it, the other updates it.
        advisory_lock("service_feedback.ticket", tenant.pk, channel.pk, external_id)
        ticket = Ticket.objects.filter(channel=channel, external_id=external_id).first()
        created = ticket is None
        if created:
            ticket = Ticket(
                tenant=tenant, channel=channel, external_id=external_id, received_at=now
            )
        old_flags = set(ticket.flags or [])
        ticket.event = event if event is not None else ticket.event
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
        ticket.sentiment, ticket.nps, ticket.satisfaction = (
            data.sentiment,
            data.nps,
            data.satisfaction,
        )
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
        if ticket.customer_id is None or ticket.match_key not in (MatchKey.MANUAL, MatchKey.LINK):
            found = match(
                customer_code=ticket.customer_code, phone=ticket.phone_key, email=ticket.email
            )
            if found.customer is not None or ticket.customer_id is None:
                ticket.customer, ticket.contact = found.customer, found.contact
                ticket.match_key, ticket.match_value = found.key, found.value[:254]
        ticket.updated_at = now
        ticket.save()
        new_flags = [f for f in ticket.flags if f not in old_flags]
        effects.ticket_saved(ticket, created=created, new_flags=new_flags, settings=settings)
    return ticket, created, new_flags


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
    from service_feedback import effects

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
        for one in linked:
            effects.ticket_saved(one, created=False, new_flags=list(one.flags or []), linked=True)
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
