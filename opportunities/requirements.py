"""The required actions of a stage (F21), checked: one function per kind, each saying met
or missing with the link to the place where it is done.

`evaluate(opportunity, stages)` checks every requirement of the stages given in a fixed
number of queries (the opportunity's attachments, follow-ups, questions and decision
chain read once each), whatever the number of requirements. The services call it for
every move (opportunities.services.opportunity_advance); the page shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count
from django.urls import reverse
from django.utils.translation import gettext as _

from customers.models import Interaction, InteractionKind
from opportunities.models import (
    Attachment,
    AttachmentStatus,
    BudgetBand,
    Opportunity,
    OpportunityContact,
    OpportunityField,
    RequirementKind,
    Stage,
    StageRequirement,
    TechnicalQuestion,
)


@dataclass
class Check:
    """One requirement checked on one opportunity."""

    requirement: StageRequirement
    met: bool
    have: str  # what is there now, e.g. "1 / 2"
    link: str  # where it is done

    @property
    def label(self) -> str:
        return str(self.requirement)

    def as_dict(self) -> dict:
        return {
            "id": str(self.requirement.public_id),
            "stage": self.requirement.stage.code,
            "kind": self.requirement.kind,
            "label": self.label,
            "met": self.met,
            "have": self.have,
            "link": self.link,
        }


@dataclass
class StageCheck:
    stage: Stage
    checks: list[Check] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(c.met for c in self.checks)

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks if not c.met]


@dataclass
class Facts:
    """What the checks read of one opportunity, read once."""

    attachments: set  # (kind id, status)
    follow_up_tags: list  # one list of talk tags per follow-up since the opportunity opened
    questions: int
    chain: list  # (decision role, attitude) per member


def facts(opportunity: Opportunity) -> Facts:
    return facts_for([opportunity])[opportunity.pk]


def facts_for(opportunities) -> dict[int, Facts]:
    """The Facts of each opportunity, in four queries for all of them."""
    opportunities = list(opportunities)
    found = {o.pk: Facts(set(), [], 0, []) for o in opportunities}
    if not opportunities:
        return found
    ids = list(found)
    for opp_id, kind_id, status in Attachment.objects.filter(opportunity__in=ids).values_list(
        "opportunity_id", "kind_id", "status"
    ):
        found[opp_id].attachments.add((kind_id, status))
    by_customer: dict[int, list[Opportunity]] = {}
    for o in opportunities:
        by_customer.setdefault(o.customer_id, []).append(o)
    follow_ups = Interaction.objects.filter(
        customer_id__in=list(by_customer),
        kind=InteractionKind.FOLLOW_UP,
        at__gte=min(o.created_at for o in opportunities),
    ).values_list("customer_id", "at", "talk_tags")
    for customer_id, at, tags in follow_ups:
        for o in by_customer[customer_id]:
            if at >= o.created_at:
                found[o.pk].follow_up_tags.append(tags)
    for opp_id, count in (
        TechnicalQuestion.objects.filter(opportunity__in=ids)
        .values("opportunity_id")
        .annotate(n=Count("id"))
        .values_list("opportunity_id", "n")
    ):
        found[opp_id].questions = count
    for opp_id, role, attitude in OpportunityContact.objects.filter(
        opportunity__in=ids
    ).values_list("opportunity_id", "role__decision_role", "attitude"):
        found[opp_id].chain.append((role, attitude))
    return found


def _page(opportunity: Opportunity, anchor: str, **query) -> str:
    url = reverse("opportunities:detail", args=[opportunity.public_id])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return f"{url}#{anchor}"


def check_one(opportunity: Opportunity, requirement: StageRequirement, found: Facts) -> Check:
    kind = requirement.kind
    if kind == RequirementKind.ATTACHMENT:
        contract = requirement.attachment_kind.is_contract
        met = any(
            kind_id == requirement.attachment_kind_id
            and (not contract or status == AttachmentStatus.EFFECTIVE)
            for kind_id, status in found.attachments
        )
        have = _("attached") if met else _("not yet")
        link = _page(opportunity, "attachments", attach=requirement.attachment_kind.code)
    elif kind == RequirementKind.FOLLOW_UPS:
        wanted = requirement.count or 1
        if requirement.talk_tag:
            got = sum(1 for tags in found.follow_up_tags if requirement.talk_tag in (tags or []))
        else:
            got = len(found.follow_up_tags)
        met = got >= wanted
        have = f"{min(got, 99)} / {wanted}"
        link = reverse("customers:detail", args=[opportunity.customer.public_id]) + "#follow-up"
    elif kind == RequirementKind.QUESTION:
        met = found.questions > 0
        have = str(found.questions)
        link = _page(opportunity, "questions")
    elif kind == RequirementKind.DECISION_CHAIN:
        wanted = requirement.count or 1
        got = sum(
            1
            for role, attitude in found.chain
            if (not requirement.decision_role or role == requirement.decision_role)
            and (not requirement.attitude or attitude == requirement.attitude)
        )
        met = got >= wanted
        have = f"{got} / {wanted}"
        link = _page(opportunity, "chain")
    elif kind == RequirementKind.FIELD:
        value = getattr(
            opportunity,
            f"{requirement.field}_id" if requirement.field == "contact" else requirement.field,
        )
        if requirement.field == OpportunityField.BUDGET_BAND:
            met = value not in ("", None, BudgetBand.PENDING)
        else:
            met = value not in ("", None)
        have = _("filled") if met else _("empty")
        link = (
            reverse("opportunities:edit", args=[opportunity.public_id]) + f"#id_{requirement.field}"
        )
    else:  # an unknown kind (a row written around the admin) is never met
        met, have, link = False, "?", _page(opportunity, "stages")
    return Check(requirement, met, have, link)


def requirements_of(stages) -> list[StageRequirement]:
    return list(
        StageRequirement.objects.filter(stage__in=[s.pk for s in stages])
        .select_related("stage", "attachment_kind")
        .order_by("stage__position", "position", "id")
    )


def evaluate(opportunity: Opportunity, stages, *, found: Facts | None = None) -> list[StageCheck]:
    """Every requirement of `stages` (in order) checked on `opportunity`."""
    stages = list(stages)
    found = found or facts(opportunity)
    by_stage = {stage.pk: StageCheck(stage) for stage in stages}
    for requirement in requirements_of(stages):
        by_stage[requirement.stage_id].checks.append(check_one(opportunity, requirement, found))
    return [by_stage[stage.pk] for stage in stages]


def missing_to_advance(opportunities) -> dict[int, tuple[Stage | None, list[Check]]]:
    """For each open opportunity, its next active stage and what is missing to move there
    (None and [] in the last stage), in a fixed number of queries for all of them."""
    opportunities = list(opportunities)
    stages = list(Stage.objects.filter(is_active=True).order_by("position", "id"))
    by_stage: dict[int, list[StageRequirement]] = {s.pk: [] for s in stages}
    for requirement in requirements_of(stages):
        by_stage[requirement.stage_id].append(requirement)
    found = facts_for(opportunities)
    answer = {}
    for o in opportunities:
        current = next((s for s in stages if s.pk == o.stage_id), None)
        later = [
            s
            for s in stages
            if current is None or (s.position, s.pk) > (current.position, current.pk)
        ]
        target = later[0] if later else None
        if target is None:
            answer[o.pk] = (None, [])
            continue
        checks = [
            check_one(o, requirement, found[o.pk])
            for s in stages
            if (s.position, s.pk) < (target.position, target.pk)
            for requirement in by_stage[s.pk]
        ]
        answer[o.pk] = (target, [c for c in checks if not c.met])
    return answer


def stages_to_pass(opportunity: Opportunity, target: Stage | None) -> list[Stage]:
    """The stages whose requirements a move to `target` needs: every active stage before
    it (None: every active stage, as winning needs), whatever the current stage, so a
    skipped stage skips none of its requirements."""
    stages = Stage.objects.filter(is_active=True).order_by("position", "id")
    if target is None:
        return list(stages)
    return [s for s in stages if (s.position, s.pk) < (target.position, target.pk)]
