"""Tracked links (F32): a document or quote sent to a customer through `/t/<token>`.

`link_create` is the service (crm.services' contract); `customer_panel` the customer
page's panel listing the customer's last links with their opens and the form that sends
a new one (crm.contributions, registered by `register()`). Opening a link is
health.signals.link_open.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm import contributions
from crm.audit import audit
from crm.models import Membership, Tenant
from crm.roles import CUSTOMER_LIST
from crm.services import actor_user, check_tenant
from customers.access import can_write_customer
from customers.models import Contact, Customer
from health.models import LinkKind, TrackedLink

CUSTOMER_PAGE = "customers.customer"  # customers.views.PAGE
SHOWN = 5  # links listed on the customer page
_TITLE_MAX = TrackedLink._meta.get_field("title").max_length
_URL_MAX = TrackedLink._meta.get_field("target_url").max_length
_WEB_ADDRESS = URLValidator(schemes=["http", "https"])


def may_send(membership: Membership | None, customer: Customer) -> bool:
    """Who sends a customer a tracked link: whoever may write on it (its owner, managers
    and admins: customers.access.can_write_customer), so a rep only to their own."""
    return membership is not None and can_write_customer(membership, customer)


def link_create(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    customer: Customer,
    kind: str,
    title: str,
    target_url: str,
    contact: Contact | None = None,
) -> TrackedLink:
    """A new tracked link to `target_url` (http or https) for `customer`, audited as
    health.link_sent. ValidationError with field errors; PermissionDenied for a member
    who may not send to this customer."""
    check_tenant(tenant, customer, contact)
    if acting_member is not None and not may_send(acting_member, customer):
        raise PermissionDenied(_("Only the customer's owner, managers and admins send links."))
    errors: dict[str, list[str]] = {}
    title = (title or "").strip()
    target_url = (target_url or "").strip()
    if kind not in LinkKind.values:
        errors["kind"] = [_("Choose a document or a quote.")]
    if not title:
        errors["title"] = [_("Give the link a title.")]
    elif len(title) > _TITLE_MAX:
        errors["title"] = [_("At most %(n)d characters.") % {"n": _TITLE_MAX}]
    if not target_url:
        errors["target_url"] = [_("Enter the address the link opens.")]
    elif len(target_url) > _URL_MAX:
        errors["target_url"] = [_("At most %(n)d characters.") % {"n": _URL_MAX}]
    else:
        try:
            _WEB_ADDRESS(target_url)
        except ValidationError:
            errors["target_url"] = [_("Enter a web address starting with http:// or https://.")]
    if contact is not None and contact.customer_id != customer.pk:
        errors["contact"] = [_("Choose one of this customer's contacts.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        link = TrackedLink.objects.create(
            tenant=tenant,
            customer=customer,
            contact=contact,
            kind=kind,
            title=title,
            target_url=target_url,
            created_by=acting_member if acting_member and acting_member.pk else None,
            sent_at=timezone.now(),
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="health.link_sent",
            obj=link,
            changes={"customer": customer.pk, "kind": kind, "title": title},
        )
    return link


def recent_links(customer: Customer) -> list[TrackedLink]:
    return list(
        TrackedLink.objects.filter(customer=customer)
        .select_related("contact")
        .order_by("-sent_at", "-id")[:SHOWN]
    )


def link_address(request, link: TrackedLink) -> str:
    """The absolute /t/ address of `link`, as the customer opens it."""
    return request.build_absolute_uri(reverse("tracked_link", args=[link.token]))


def panel_context(request, membership, customer, *, form=None, sent=None) -> dict:
    """The panel's context: the last links; `form` shown open (else a button opens it,
    so the customer page pays one query for the panel)."""
    links = recent_links(customer)
    return {
        "customer": customer,
        "rows": [(link, link_address(request, link)) for link in links],
        "can_send": may_send(membership, customer),
        "form": form,
        "action": reverse("health_link_create", args=[customer.public_id]),
        "sent": sent,
        "sent_address": link_address(request, sent) if sent else "",
    }


def customer_panel(request, membership, customer):
    """The customer's last tracked links with their opens, and the send form."""
    if membership is None or membership.role not in CUSTOMER_LIST:
        return None
    return "health/links_panel.html", panel_context(request, membership, customer)


def register() -> None:
    contributions.register_panel(
        CUSTOMER_PAGE,
        customer_panel,
        key="health_links",
        lazy=True,
        title=gettext_lazy("Tracked links"),
        order=35,
    )
