"""The daily board's sections from every app (F15): a registry, as crm.navigation is for
the menu and the home page.

The board is the leads app's page (leads/board/): leads ranks today's work itself, in the
board's main list. Every other app puts a section of its own beside that list without the
board importing it: in its AppConfig.ready(),

    from crm.board import BoardSection, register_section

    register_section(
        BoardSection(
            key="stalled_opportunities",
            title=_("Stalled opportunities"),
            icon="hourglass-split",
            order=10,
            holds=_("Your opportunities that have not moved …"),
            source=_("Filled by opportunities once they are tracked in the CRM."),
            items=stalled_opportunities,  # (membership, today) -> list
            template="opportunities/board_stalled.html",
        )
    )

- `items(membership, today)` lists the section's items for the member whose board it
  is; it runs inside their tenant (the request's), `today` is the tenant's local day.
  The items are rendered with `template`, whose context is the board page's plus
  `section` (this object), `items` and `count`.
- A section without `items` (its app has no data yet), or with nothing today, shows its
  slot instead: what it will list (`holds`) and what fills it (`source`).
- `roles`: the roles (a crm.roles set) of the board's member that the section is shown
  for; everyone by default. Sections are shown by `order`, then `key`; registering a key
  again replaces the section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from crm.models import Membership
from crm.roles import EVERYONE

ItemsProvider = Callable[[Membership, date], list]


@dataclass(frozen=True)
class BoardSection:
    key: str  # unique; the page's data-board-section (its collapsed state is remembered)
    title: str  # lazy
    icon: str  # a Bootstrap Icons name, e.g. "heart-pulse"
    holds: str = ""  # lazy: what the section will list (its slot, while it has nothing)
    source: str = ""  # lazy: what fills it
    order: int = 100
    roles: frozenset[str] = EVERYONE
    items: ItemsProvider | None = field(default=None, compare=False)
    template: str = ""  # renders the items; needed with `items`


@dataclass(frozen=True)
class ShownSection:
    """A section on one member's board today: its items (empty: the slot is shown)."""

    section: BoardSection
    items: list

    @property
    def count(self) -> int:
        return len(self.items)


_registry: dict[str, BoardSection] = {}


def register_section(section: BoardSection) -> None:
    if section.items is not None and not section.template:
        raise ValueError(f"board section {section.key!r} lists items: give it a template")
    _registry[section.key] = section


def sections() -> list[BoardSection]:
    """Every registered section, in the board's order."""
    return sorted(_registry.values(), key=lambda s: (s.order, s.key))


def sections_for(membership: Membership, today: date) -> list[ShownSection]:
    """The sections of `membership`'s board on `today`, each with its items (inside the
    member's tenant)."""
    shown = []
    for section in sections():
        if membership.role not in section.roles:
            continue
        items = list(section.items(membership, today)) if section.items is not None else []
        shown.append(ShownSection(section, items))
    return shown
