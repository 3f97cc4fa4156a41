"""A replay as the policy page asks for it (F14): the stored run, loaded, replayed and
compared.

`replay_create()` stores a queued `ReplayRun` of a draft and sends the task
(leads.tasks.run_replay); `run_replay()`, in the worker, loads the window's leads, the
reps and the real ledger in a handful of bulk queries (`load_leads()`, `load_reps()`,
`load_window()`), replays the window under the version active when it was requested and
under the draft as it was then (`policy_snapshot()`) with the pure
`leads.assignment.replay.replay()`, and stores the page's figures (`compare()`) in
`ReplayRun.result`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo

from django.db import connection, transaction
from django.db.models import Max
from django.db.models.expressions import RawSQL
from django.utils import timezone

from crm import normalize, roles
from crm.celery import app
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from crm.tenancy import current_tenant
from leads.assignment.engine import LeadFacts, Params, RepState
from leads.assignment.policy import policy_active
from leads.assignment.replay import (
    SEED_MASK,
    ReplayLead,
    ReplayResult,
    Window,
    gini,
    replay,
)
from leads.assignment.reps import state_of
from leads.assignment.scoring import compile_rules
from leads.models import (
    AssignmentPolicy,
    Channel,
    Lead,
    ReplayRun,
    ReplayStatus,
    RepLedgerDay,
    RepProfile,
    SourceGrade,
)

logger = logging.getLogger(__name__)

# The Celery task that runs a stored replay (leads.tasks.run_replay), sent by its name: the
# tasks module imports this one to run it.
RUN_TASK = "leads.run_replay"
NEVER_ASSIGNED_OPEN = timedelta(hours=24)
MOVED_CAP = 500


LEAD_COLUMNS = (
    "id",
    "public_id",
    "created_at",
    "channel_id",
    "source_grade",
    "budget",
    "message",
    "company",
    "contact_name",
    "phone",
    "industry",
    "province",
    "city",
    "company_size",
    "in_tender",
    "sample_provided",
    "is_suspect",
    "revisit_of_id",
    "revisit_of__owner_id",
    "open_seconds",
)


def _open_time(end: datetime):
    """How long the real lead stayed open once assigned (NULL: never assigned): to its
    verification, or to `end`, as seconds: one number to read per row instead of two
    timestamps to parse (the load's main cost)."""
    table = connection.ops.quote_name(Lead._meta.db_table)
    return RawSQL(  # noqa: S611 (no input: a table name and a bound parameter)
        f"EXTRACT(EPOCH FROM (COALESCE({table}.verified_at, %s) - {table}.assigned_at))",
        [end],
    )


def load_leads(start: datetime, end: datetime) -> list[ReplayLead]:
    """The current tenant's leads that arrived in [start, end], in arrival order, in three
    queries (leads, their tags through the M2M table, the channels)."""
    rows = (
        Lead.objects.filter(created_at__gte=start, created_at__lte=end)
        .annotate(open_seconds=_open_time(end))
        .order_by("created_at", "id")
        .values_list(*LEAD_COLUMNS)
    )
    tags: dict[int, list[str]] = {}
    through = Lead.tags.through
    tag_rows = through.objects.filter(
        lead__tenant=current_tenant(), lead__created_at__gte=start, lead__created_at__lte=end
    ).values_list("lead_id", "tag__name")
    for lead_id, name in tag_rows:
        tags.setdefault(lead_id, []).append(name)
    channels = {
        pk: (name, key, kind)
        for pk, name, key, kind in Channel.objects.values_list("id", "name", "key", "type")
    }
    unknown = ("", "", "")
    no_tags: frozenset = frozenset()
    leads = []
    for (
        pk,
        public_id,
        created_at,
        channel_id,
        grade,
        budget,
        message,
        company,
        contact_name,
        phone,
        industry,
        province,
        city,
        company_size,
        in_tender,
        sample_provided,
        is_suspect,
        revisit_of,
        original_owner,
        seconds,
    ) in rows:
        channel_name, channel_key, channel_type = channels.get(channel_id, unknown)
        lead_tags = tags.get(pk)
        facts = LeadFacts(
            id=pk,
            created_at=created_at,
            channel_name=channel_name,
            channel_key=channel_key,
            channel_type=channel_type,
            source_grade=grade,
            budget=normalize.parse_budget(budget) if budget else None,
            message=message,
            company=company,
            industry=industry,
            province=province,
            city=city,
            company_size=company_size,
            in_tender=in_tender,
            sample_provided=sample_provided,
            tags=frozenset(lead_tags) if lead_tags else no_tags,
            is_suspect=is_suspect,
            is_revisit=revisit_of is not None,
            first_touch_at=None,  # at intake, nobody has touched the lead yet
        )
        if seconds is None:
            open_for = NEVER_ASSIGNED_OPEN
        elif isinstance(seconds, timedelta):
            open_for = max(seconds, timedelta(0))
        else:
            open_for = timedelta(seconds=max(float(seconds), 0.0))
        leads.append(
            ReplayLead(
                facts=facts,
                public_id=public_id,
                label="",
                open_for=open_for,
                seed=int(public_id) & SEED_MASK,
                grade_a=grade == SourceGrade.A,
                revisit_of=revisit_of,
                original_owner=original_owner,
                who=(contact_name, phone),
            )
        )
    return leads


def load_reps(start: datetime, tz: tzinfo) -> list[RepState]:
    """The tenant's active reps with their profiles (missing profile: the defaults), and
    their real last lead before the window (the hot zone's clock)."""
    members = list(
        Membership.objects.in_tenant(current_tenant())
        .active()
        .filter(role__in=roles.OWNERS)
        .select_related("user")
        .order_by("id")
    )
    ids = [m.pk for m in members]
    profiles = {p.membership_id: p for p in RepProfile.objects.filter(membership_id__in=ids)}
    last = dict(
        Lead.objects.filter(owner_id__in=ids, assigned_at__lt=start)
        .values_list("owner_id")
        .annotate(at=Max("assigned_at"))
        .values_list("owner_id", "at")
    )
    today = timezone.localtime(start, tz).date()
    states = []
    for m in members:
        state = state_of(m, profiles.get(m.pk), today)
        state.last_assigned_at = last.get(m.pk)
        states.append(state)
    return states


def load_window(start: datetime, end: datetime, tz: tzinfo) -> Window:
    window = Window(start=start, end=end, tz=tz)
    rows = RepLedgerDay.objects.filter(
        day__gte=window.day(start), day__lte=window.day(end)
    ).values_list("membership_id", "day", "expected", "received")
    days: dict[date, set] = {}
    for membership_id, day, expected, received in rows:
        present = days.setdefault(day, set())
        if expected > 0 or received > 0:
            present.add(membership_id)
    window.available = {day: frozenset(ids) for day, ids in days.items()}
    return window


class _Rule:
    """A score rule as snapshotted in a ReplayRun (what `compile_rules` reads)."""

    def __init__(self, data: dict):
        self.public_id = data.get("id") or ""
        self.label = data.get("label", "")
        self.field = data.get("field", "")
        self.operator = data.get("operator", "")
        self.value = data.get("value", "")
        self.points = int(data.get("points", 0))

    def __str__(self) -> str:  # as ScoreRule.__str__
        return self.label or f"{self.field} {self.operator} {self.value}"


def rules_snapshot(policy: AssignmentPolicy) -> list[dict]:
    return [
        {
            "id": str(r.public_id),
            "label": r.label,
            "field": r.field,
            "operator": r.operator,
            "value": r.value,
            "points": r.points,
            "position": r.position,
        }
        for r in policy.rules.all()
    ]


def policy_snapshot(policy: AssignmentPolicy) -> dict:
    """The parameters and rules of a policy as a ReplayRun keeps them."""
    return {"params": Params.of(policy).as_dict(), "rules": rules_snapshot(policy)}


def snapshot_matches(policy: AssignmentPolicy, snapshot: dict) -> bool:
    """Whether `policy` still holds what `snapshot` simulated (ids and order aside)."""

    def lines(rules):
        return sorted(
            (r["label"], r["field"], r["operator"], r["value"], r["points"]) for r in rules
        )

    current = policy_snapshot(policy)
    return current["params"] == snapshot.get("params") and lines(current["rules"]) == lines(
        snapshot.get("rules", [])
    )


def replay_create(
    *, tenant: Tenant, acting_member: Membership | None, draft: AssignmentPolicy, days: int
) -> ReplayRun:
    """A queued ReplayRun of `draft` against the active version; the task
    (leads.tasks.run_replay, sent by its name) is sent when the transaction commits."""
    check_tenant(tenant, draft, acting_member)
    if not draft.is_draft:
        raise ValueError("only a draft is simulated")
    with transaction.atomic():
        run = ReplayRun.objects.create(
            tenant=tenant,
            policy=draft,
            baseline=policy_active(),
            days=days,
            parameters=policy_snapshot(draft),
            requested_by=actor_user(acting_member),
        )
        task = app.signature(RUN_TASK, args=(run.tenant_id, run.pk))
        transaction.on_commit(task.delay)
    return run


# --- the run -------------------------------------------------------------------------------


def _baseline(run: ReplayRun) -> AssignmentPolicy:
    """The version the draft is compared with: the one active when it was requested."""
    return run.baseline if run.baseline_id is not None else policy_active()


def compare(
    leads: Sequence[ReplayLead],
    reps: Sequence[RepState],
    now_result: ReplayResult,
    draft_result: ReplayResult,
) -> dict:
    """The page's figures: per rep, Gini, the leads that move."""
    names = {r.membership_id: r.name for r in reps}
    rows = [
        {
            "id": r.membership_id,
            "name": r.name,
            "now": now_result.received[r.membership_id],
            "draft": draft_result.received[r.membership_id],
            "a_now": now_result.received_a[r.membership_id],
            "a_draft": draft_result.received_a[r.membership_id],
        }
        for r in reps
    ]
    rows.sort(key=lambda row: (row["name"], row["id"]))
    moved, total = [], 0
    for lead, before, after in zip(leads, now_result.chosen, draft_result.chosen, strict=True):
        if before == after:
            continue
        total += 1
        if len(moved) < MOVED_CAP:
            moved.append(
                {
                    "lead": str(lead.public_id),
                    "label": lead.text(),
                    "grade_a": lead.grade_a,
                    "from_id": before,
                    "to_id": after,
                    "from": names.get(before) if before is not None else None,
                    "to": names.get(after) if after is not None else None,
                }
            )
    return {
        "leads": len(leads),
        "a_leads": sum(1 for lead in leads if lead.grade_a),
        "reps": rows,
        "unassigned_now": sum(1 for c in now_result.chosen if c is None),
        "unassigned_draft": sum(1 for c in draft_result.chosen if c is None),
        "gini_now": round(gini(now_result.received.values()), 4),
        "gini_draft": round(gini(draft_result.received.values()), 4),
        "moved": moved,
        "moved_total": total,
    }


def compute(run: ReplayRun) -> dict:
    """The comparison for `run` (inside its tenant); raises on failure."""
    started = time.perf_counter()
    tz = current_tenant().tzinfo
    end = run.created_at
    start = end - timedelta(days=run.days)
    leads = load_leads(start, end)
    reps = load_reps(start, tz)
    window = load_window(start, end, tz)
    baseline = _baseline(run)
    base_params = Params.of(baseline)
    base_rules = compile_rules(baseline.rules.all())
    draft_params = Params.from_dict(run.parameters.get("params", {}))
    draft_rules = compile_rules(_Rule(r) for r in run.parameters.get("rules", []))
    loaded = time.perf_counter()
    now_result = replay(leads, reps, base_params, base_rules, window=window)
    draft_result = replay(leads, reps, draft_params, draft_rules, window=window)
    result = compare(leads, reps, now_result, draft_result)
    result.update(
        baseline_version=baseline.version,
        window={"start": start.isoformat(), "end": end.isoformat(), "days": run.days},
        load_seconds=round(loaded - started, 3),
        elapsed=round(time.perf_counter() - started, 3),
    )
    return result


def run_replay(run: ReplayRun) -> ReplayRun:
    """Fill `run.result` (status done) or record the error (status failed)."""
    run.status = ReplayStatus.RUNNING
    run.save(update_fields=["status"])
    try:
        with transaction.atomic():  # a savepoint: a failed query must not doom the save
            result = compute(run)
    except Exception as exc:
        logger.exception("replay %s failed", run.pk)
        run.status = ReplayStatus.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
    else:
        run.status = ReplayStatus.DONE
        run.result = result
        run.error = ""
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "result", "error", "finished_at"])
    return run
