"""The reps as the engine sees them (F9, F10): their states, read from the database, and
their open loads against their caps.

`rep_states()` loads every active rep of the tenant for a dispatch in three queries;
`open_loads()` is the one count of open load (docs/assignment.md, "Open load") that the
engine's cap, the rep's profile, "why didn't I get it" and the board all read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from crm import normalize, roles
from crm.models import Membership
from crm.tenancy import current_tenant, tenant_today
from leads.assignment.engine import OK, Params, RepState, intake_verdict
from leads.assignment.policy import active_params
from leads.models import Lead, RepLedgerDay, RepProfile, profile_of, rep_available

PROFILE_FIELDS = (
    "industries",
    "provinces",
    "cities",
    "product_lines",
    "response_tier",
    "cycle_preference",
    "capacity",
    "share_weight",
    "is_available",
    "unavailable_until",
    "zone",
    "last_assigned_at",
)


def rep_states(params: Params, now: datetime) -> list[RepState]:
    """Every active rep of the tenant, with profile, open backlog and ledger (3 queries).

    Read as plain values, not model objects: at 200 reps, building the memberships,
    users and profiles as objects took most of a dispatch."""
    tenant = current_tenant()
    reps = (
        Membership.objects.in_tenant(tenant)
        .active()
        .filter(role__in=roles.OWNERS)
        .order_by("id")
        .values(
            "id",
            "created_at",
            "user__username",
            "user__first_name",
            "user__last_name",
            "rep_profile__id",
            *(f"rep_profile__{f}" for f in PROFILE_FIELDS),
        )
    )
    rows = list(reps)
    missing = [r["id"] for r in rows if r["rep_profile__id"] is None]
    if missing:
        # A rep without a profile gets the defaults, kept from now on (hot zone, zones).
        RepProfile.objects.bulk_create(
            [RepProfile(tenant=tenant, membership_id=pk) for pk in missing],
            ignore_conflicts=True,
        )
        rows = list(reps.all())
    ids = [r["id"] for r in rows]
    open_counts = open_loads(ids)
    since = tenant_today(now) - timedelta(days=params.fairness_window_days - 1)
    ledger = {
        row["membership_id"]: (row["e"] or 0.0, row["r"] or 0)
        for row in RepLedgerDay.objects.filter(day__gte=since, membership_id__in=ids)
        .values("membership_id")
        .annotate(e=Sum("expected"), r=Sum("received"))
    }
    today = tenant_today(now)
    states = []
    for row in rows:
        full = f"{row['user__first_name']} {row['user__last_name']}".strip()
        profile = {f: row[f"rep_profile__{f}"] for f in PROFILE_FIELDS}
        state = _state(row["id"], full or row["user__username"], row["created_at"], profile, today)
        state.open_count = open_counts.get(row["id"], 0)
        state.expected, state.received = ledger.get(row["id"], (0.0, 0))
        states.append(state)
    return states


def open_loads(membership_ids) -> dict[int, int]:
    """Each rep's open load (F10; docs/assignment.md, "Open load"): how many leads of
    `Lead.objects.open_load()` they own, by membership id (reps with none are absent).
    The engine's cap, the profile page, "why didn't I get it" and the board all count
    with this one query."""
    return dict(
        Lead.objects.open_load()
        .filter(owner_id__in=list(membership_ids))
        .values_list("owner_id")
        .annotate(n=Count("id"))
        .values_list("owner_id", "n")
    )


@dataclass(frozen=True)
class Load:
    """A rep's open load against their cap, and whether they take new leads now."""

    open: int
    cap: int
    verdict: str  # intake_verdict(): ok, unavailable, paused or at_capacity

    @property
    def takes_leads(self) -> bool:
        return self.verdict == OK

    @property
    def free(self) -> int:
        return max(self.cap - self.open, 0)


def rep_load(
    membership: Membership,
    *,
    params: Params | None = None,
    profile: RepProfile | None = None,
    now: datetime | None = None,
    open_count: int | None = None,
) -> Load:
    """The rep's `Load` as the engine would see it now (profile defaults when they have
    none; nothing is written). `open_count`: their open load when the caller has just
    counted the same rows (the board lists them), else `open_loads()` counts it."""
    now = now or timezone.now()
    if params is None:
        params = active_params()
    if profile is None:
        profile = profile_of(membership)
    state = state_of(membership, profile, tenant_today(now))
    if open_count is None:
        open_count = open_loads([membership.pk]).get(membership.pk, 0)
    state.open_count = open_count
    return Load(open=state.open_count, cap=state.cap(params), verdict=intake_verdict(state, params))


def state_of(membership: Membership, profile: RepProfile | None, today: date) -> RepState:
    values = None if profile is None else {f: getattr(profile, f) for f in PROFILE_FIELDS}
    state = _state(membership.pk, membership.display_name, membership.created_at, values, today)
    state.membership = membership
    return state


def _state(membership_id, name, joined_at, profile: dict | None, today: date) -> RepState:
    state = RepState(membership_id=membership_id, name=name, joined_at=joined_at)
    if profile is not None:
        state.industries = frozenset(profile["industries"] or ())
        state.regions = frozenset(
            normalize.region_key(r)
            for r in [*(profile["provinces"] or ()), *(profile["cities"] or ())]
        )
        state.product_lines = tuple(p.lower() for p in profile["product_lines"] or () if p)
        state.response_tier = profile["response_tier"]
        state.cycle_preference = profile["cycle_preference"]
        state.capacity = profile["capacity"]
        state.share_weight = profile["share_weight"]
        state.available = rep_available(
            profile["is_available"], profile["unavailable_until"], today
        )
        state.zone = profile["zone"]
        state.last_assigned_at = profile["last_assigned_at"] or joined_at
    return state
