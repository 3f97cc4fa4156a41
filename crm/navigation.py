"""What each role can reach: the navigation bar and the home page read from one registry.

Apps add their screens in their AppConfig.ready() with `register(NavItem(...))`, so the
home page only ever links to what exists. Apps put cards on the home page the same way,
without the kernel knowing them: `register_home_card(card)`, where `card(request)` returns
`(template name, context)` to show, or None; and may make another page a role's home:
`register_home_redirect(role, url_name)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.models import Role
from crm.roles import ADMINS, DASHBOARD, EVERYONE, MANAGERS, REPORT_READERS


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str
    icon: str  # a Bootstrap Icons name, e.g. "house"
    description: str = ""
    roles: frozenset[str] = EVERYONE  # a crm.roles set
    in_navbar: bool = True
    order: int = 100
    # Extra condition on the request, e.g. superuser-only items.
    visible: Callable | None = field(default=None, compare=False)
    # A navbar menu the item sits in (a key of GROUPS), or "" for the bar itself.
    group: str = ""

    @property
    def url(self) -> str:
        return reverse(self.url_name)


_registry: dict[str, NavItem] = {}

REPORTS = "reports"
# The navbar's menus: key → (label, icon). A menu stands where its first item would.
GROUPS = {REPORTS: (_("Reports"), "bar-chart-line")}


@dataclass(frozen=True)
class NavGroup:
    key: str
    label: str
    icon: str
    items: list[NavItem]
    active: bool  # the request is on one of its items' pages


def register(item: NavItem) -> None:
    _registry[item.key] = item


def items_for(request) -> list[NavItem]:
    membership = getattr(request, "membership", None)
    role = membership.role if membership else None
    superuser = request.user.is_authenticated and request.user.is_superuser
    items = []
    for item in _registry.values():
        allowed = role in item.roles or (superuser and item.roles == ADMINS)
        if allowed and (item.visible is None or item.visible(request)):
            items.append(item)
    return sorted(items, key=lambda i: (i.order, i.key))


def navbar_for(request) -> list[NavItem | NavGroup]:
    """The navbar's entries for this request, in order: items, and each group's items in
    one menu where its first item would be (a group of one item is that item)."""
    shown = [i for i in items_for(request) if i.in_navbar]
    grouped: dict[str, list[NavItem]] = {}
    for item in shown:
        if item.group:
            grouped.setdefault(item.group, []).append(item)
    entries: list[NavItem | NavGroup] = []
    for item in shown:
        members = grouped.get(item.group) if item.group else None
        if not members or len(members) == 1:
            entries.append(item)
        elif item is members[0]:
            label, icon = GROUPS[item.group]
            active = any(request.path == member.url for member in members)
            entries.append(NavGroup(item.group, str(label), icon, members, active))
    return entries


# --- home-page cards -------------------------------------------------------------------------

HomeCard = Callable[[object], "tuple[str, dict] | None"]
_home_cards: dict[str, HomeCard] = {}


def register_home_card(card: HomeCard, *, key: str = "") -> None:
    """Show `card(request)`'s template on the home page whenever it returns one.

    Cards run inside the request's tenant, in registration order; registering the same
    key (by default the callable's dotted name) again replaces the earlier card.
    """
    _home_cards[key or f"{card.__module__}.{card.__qualname__}"] = card


def home_cards_for(request) -> list[tuple[str, dict]]:
    """(template name, context) of every card that has something for this request."""
    cards = []
    for card in _home_cards.values():
        shown = card(request)
        if shown is not None:
            cards.append(shown)
    return cards


# --- home-page redirects ------------------------------------------------------------------------

_home_redirects: dict[str, str] = {}


def register_home_redirect(role: str, url_name: str) -> None:
    """Send members with `role` from the home page to `url_name` (an app's own home, e.g.
    the rep's daily board). Registering the role again replaces the target."""
    _home_redirects[role] = url_name


def home_redirect_for(request) -> str | None:
    """The URL name the home page sends this request to, or None to show the home page."""
    membership = getattr(request, "membership", None)
    return _home_redirects.get(membership.role) if membership is not None else None


def register_defaults() -> None:
    register(NavItem("home", _("Home"), "home", "house", order=0, in_navbar=False))
    register(
        NavItem(
            "dashboard",
            _("Dashboard"),
            "dashboard",
            "speedometer2",
            description=_(
                "The period's figures beside the previous period's, by region and rep, each "
                "opening the rows it counts."
            ),
            roles=DASHBOARD,
            order=1,
        )
    )
    # Managers and admins land on it (docs/dashboards.md).
    for role in (Role.MANAGER, Role.ADMIN):
        register_home_redirect(role, "dashboard")
    register(
        NavItem(
            "team",
            _("Team"),
            "team",
            "people",
            description=_("Everyone in this tenant, with their role."),
            roles=MANAGERS,
            order=80,
        )
    )
    register(
        NavItem(
            "metrics",
            _("Metrics"),
            "metrics",
            "list-columns-reverse",
            group=REPORTS,
            description=_(
                "Every figure the reports show: what it counts, and this month's value with"
                " the rows behind it."
            ),
            roles=REPORT_READERS,
            order=70,
        )
    )
    register(
        NavItem(
            "self_test",
            _("CRM health self-test"),
            "self_test",
            "clipboard2-pulse",
            group=REPORTS,
            description=_(
                "Ten indicators of how well the team uses the CRM, scored out of 10, each "
                "failing one with its records, their owners and what to do."
            ),
            roles=MANAGERS,
            order=78,
            in_navbar=False,
        )
    )
    register(
        NavItem(
            "admin",
            _("Administration"),
            "admin:index",
            "gear",
            description=_("Members and the audit log of this tenant."),
            roles=ADMINS,
            order=90,
        )
    )
    register(
        NavItem(
            "password",
            _("Change password"),
            "password_change",
            "key",
            description=_("Set a new password for your account."),
            in_navbar=False,
            order=95,
        )
    )
