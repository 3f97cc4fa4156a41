"""The decision chain read as a whole (F22): which roles are reached, whom to reach next,
and the small graph the opportunity's page draws.

Everything here works on members already read (`OpportunityContact` rows with their
`role` and `contact`), so the page reads the chain once; the functions are pure and are
tested on hand-made chains (tests/opportunities/test_chain.py).

- Coverage counts roles, not people: a role is mapped when it has a member, contacted
  when any of its members is reached or engaged. Coverage = roles contacted ÷ roles mapped.
- "Reach next" names the highest-influence role not yet contacted or still opposed (a
  role's influence is its strongest member's among those that make it a candidate), and
  the member to approach in it. At equal influence an opposed role comes before an
  uncontacted one (a known blocker first), then the roles' order in the tenant's list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from opportunities.models import Attitude, ContactStatus, Influence

INFLUENCE_RANK = {Influence.HIGH: 3, Influence.MEDIUM: 2, Influence.LOW: 1}
CONTACTED = frozenset({ContactStatus.REACHED, ContactStatus.ENGAGED})

# The graph's colours by attitude (Bootstrap's success, warning, danger, secondary), and
# its node sizes by influence.
ATTITUDE_COLOURS = {
    Attitude.SUPPORT: "#198754",
    Attitude.NEUTRAL: "#e0a800",
    Attitude.OPPOSE: "#dc3545",
    Attitude.UNKNOWN: "#6c757d",
}
CENTRE_COLOUR = "#0d6efd"
NODE_SIZES = {Influence.HIGH: 46, Influence.MEDIUM: 34, Influence.LOW: 24}
CENTRE_SIZE = 30
RADIUS = 100


def _rank(member) -> int:
    return INFLUENCE_RANK.get(member.influence, 0)


@dataclass
class RoleState:
    """One mapped role of the chain and its members."""

    role: object  # a ChainRole
    members: list = field(default_factory=list)

    @property
    def contacted(self) -> bool:
        return any(m.contact_status in CONTACTED for m in self.members)

    @property
    def opposed(self) -> bool:
        return any(m.attitude == Attitude.OPPOSE for m in self.members)

    @property
    def influence(self) -> str:
        """The strongest influence among the role's members."""
        return max(self.members, key=_rank).influence


def roles_of(members) -> list[RoleState]:
    """The mapped roles, in the tenant's order of roles, each with its members."""
    by_role: dict[int, RoleState] = {}
    for member in members:
        by_role.setdefault(member.role_id, RoleState(member.role)).members.append(member)
    return sorted(by_role.values(), key=lambda r: (r.role.position, r.role.pk or 0))


@dataclass(frozen=True)
class Coverage:
    contacted: int
    mapped: int

    @property
    def percent(self) -> int | None:
        """Roles contacted ÷ roles mapped, in whole percent (None: no role mapped)."""
        if not self.mapped:
            return None
        return round(100 * self.contacted / self.mapped)


def coverage(members) -> Coverage:
    roles = roles_of(members)
    return Coverage(contacted=sum(1 for r in roles if r.contacted), mapped=len(roles))


class Reason:
    OPPOSED = "opposed"
    NOT_CONTACTED = "not_contacted"


@dataclass(frozen=True)
class NextStep:
    """The role to work on next, why, and the member in it to approach."""

    role: object  # a ChainRole
    reason: str  # Reason.*
    member: object  # an OpportunityContact
    influence: str

    @property
    def reason_label(self) -> str:
        if self.reason == Reason.OPPOSED:
            return _("still opposed")
        return _("not contacted yet")


def _candidate(state: RoleState) -> NextStep | None:
    if state.opposed:
        members = [m for m in state.members if m.attitude == Attitude.OPPOSE]
        reason = Reason.OPPOSED
    elif not state.contacted:
        members = state.members
        reason = Reason.NOT_CONTACTED
    else:
        return None
    member = max(members, key=_rank)  # the first of the strongest, in the chain's order
    return NextStep(state.role, reason, member, member.influence)


def reach_next(members) -> NextStep | None:
    """The highest-influence role not yet contacted or still opposed (None: every mapped
    role is contacted and none opposes, or nothing is mapped)."""
    steps = [step for state in roles_of(members) if (step := _candidate(state)) is not None]
    if not steps:
        return None
    # roles_of's order is the tie-break after influence and reason: sorted() is stable.
    return sorted(
        steps,
        key=lambda s: (-INFLUENCE_RANK.get(s.influence, 0), s.reason != Reason.OPPOSED),
    )[0]


def graph(members, *, centre: str) -> dict:
    """The chain as ECharts draws it (static/opportunities/page.js): the customer in the
    middle, one node per member coloured by attitude and sized by influence around it on
    a circle (fixed positions: the same picture on every load), linked to the customer by
    its role."""
    categories = [
        {"name": str(Attitude(a).label), "itemStyle": {"color": colour}}
        for a, colour in ATTITUDE_COLOURS.items()
    ]
    index = {a: i for i, a in enumerate(ATTITUDE_COLOURS)}
    nodes = [
        {
            "id": "centre",
            "name": centre,
            "symbolSize": CENTRE_SIZE,
            "itemStyle": {"color": CENTRE_COLOUR},
            "label": {"show": True, "fontWeight": "bold"},
            "category": len(categories),
            "x": 0,
            "y": 0,
        }
    ]
    links = []
    members = list(members)
    for i, member in enumerate(members):
        node_id = str(member.public_id)
        angle = -math.pi / 2 + 2 * math.pi * i / len(members)
        nodes.append(
            {
                "id": node_id,
                "x": round(RADIUS * math.cos(angle), 1),
                "y": round(RADIUS * math.sin(angle), 1),
                "name": member.contact.name or str(member.role),
                "value": str(member.role),
                "symbolSize": NODE_SIZES.get(member.influence, NODE_SIZES[Influence.LOW]),
                "category": index.get(member.attitude, index[Attitude.UNKNOWN]),
                "attitude": member.attitude,
                "influence": str(Influence(member.influence).label),
                "contacted": member.contact_status in CONTACTED,
            }
        )
        links.append({"source": "centre", "target": node_id, "value": str(member.role)})
    legend = [c["name"] for c in categories]  # the attitudes, not the customer
    categories.append({"name": centre, "itemStyle": {"color": CENTRE_COLOUR}})
    return {"nodes": nodes, "links": links, "categories": categories, "legend": legend}
