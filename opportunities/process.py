"""The sales process figures of the opportunities app (F37) in the kernel's metric
registry, group "process": whether each rep reaches the people who decide, and answers
the objections raised. Registered from opportunities.registrations; the kernel's process
report and weekly diagnosis (crm.process) read them by their group. docs/process.md
writes the definitions out.

- Key-person coverage, over the opportunities in play in the period (opened by its end,
  not won or lost before its start): those whose decision chain has its key people (the
  members in a decision-maker role, CIO and 总经理 by default, and any member of high
  influence) and every one of them reached or engaged. Contact status is the chain's
  state now: a follow-up that reached a role marks its members (the customers follow-up
  trigger, opportunities migration 0002).
- Objection closure, over the objections raised in the period (the technical questions
  marked on an opportunity: "能否与现有 PACS 系统对接?"): those answered since.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    Column,
    Dimension,
    Metric,
    Rate,
    RowLink,
    period_bounds,
    register_metric,
    register_rate,
)
from crm.models import Tenant
from customers.models import DecisionRole
from opportunities.chain import CONTACTED
from opportunities.models import (
    Influence,
    Opportunity,
    OpportunityContact,
    OpportunityStatus,
    TechnicalQuestion,
)

GROUP = "process"
SECTION = _("Sales process")
KEY_PERSON_TARGET = 0.7  # brief 002's decision-chain completeness ≥ 70 %
OBJECTION_TARGET = 0.8


def _column(model, path: str) -> Column:
    first = path.split("__", 1)[0]
    return Column(path, capfirst(model._meta.get_field(first).verbose_name))


# -- key-person coverage -----------------------------------------------------------------------


def in_play(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The tenant's opportunities open at some moment of its local days [start, end]:
    opened before the range's end, and open still or won or lost on or after its start."""
    since, until = period_bounds(tenant, start, end)
    return Opportunity.objects.filter(tenant=tenant, created_at__lt=until).filter(
        Q(status=OpportunityStatus.OPEN) | Q(won_at__gte=since) | Q(lost_at__gte=since)
    )


def key_person_q() -> Q:
    """A chain member who is a key person: in a decision-maker role, or of high influence."""
    return Q(role__decision_role=DecisionRole.DECISION_MAKER) | Q(influence=Influence.HIGH)


def _key_people() -> Exists:
    return Exists(OpportunityContact.objects.filter(key_person_q(), opportunity=OuterRef("pk")))


def key_people_reached() -> Q:
    """At least one key person mapped, and none of them still not contacted."""
    untouched = Exists(
        OpportunityContact.objects.filter(key_person_q(), opportunity=OuterRef("pk")).exclude(
            contact_status__in=CONTACTED
        )
    )
    return Q(_key_people()) & ~Q(untouched)


OPPORTUNITY_COLUMNS = tuple(
    _column(Opportunity, path)
    for path in (
        "public_id",
        "name",
        "customer__name",
        "owner__user__username",
        "stage__name",
        "status",
        "created_at",
    )
)
OPPORTUNITY_DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "owner"))
OPPORTUNITY_LINK = RowLink("opportunities:detail", "public_id")


# -- objections ----------------------------------------------------------------------------------


def objections_raised(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The technical questions marked on the tenant's opportunities on its local days
    [start, end]."""
    since, until = period_bounds(tenant, start, end)
    return TechnicalQuestion.objects.filter(
        tenant=tenant, opened_at__gte=since, opened_at__lt=until
    )


OBJECTION_COLUMNS = tuple(
    _column(TechnicalQuestion, path)
    for path in (
        "opened_at",
        "text",
        "opportunity__name",
        "opportunity__owner__user__username",
        "closed_at",
    )
)
OBJECTION_DIMENSIONS = (
    Dimension(REGION, "opportunity__customer__province"),
    Dimension(REP, "opportunity__owner"),
)
OBJECTION_LINK = RowLink("opportunities:detail", "opportunity__public_id")


def register() -> None:
    chain = {
        "rows": in_play,
        "columns": OPPORTUNITY_COLUMNS,
        "dimensions": OPPORTUNITY_DIMENSIONS,
        "dated_by": "created_at",
        "link": OPPORTUNITY_LINK,
        "section": SECTION,
        "group": GROUP,
        "aggregate": COUNT,
    }
    register_metric(
        Metric(
            key="opportunities.process_in_play",
            label=_("Opportunities in play"),
            definition=_(
                "Opportunities open at some moment of the range: opened before its end, "
                "not won or lost before its start."
            ),
            **chain,
        )
    )
    register_metric(
        Metric(
            key="opportunities.process_key_people_reached",
            label=_("Key people reached"),
            definition=_(
                "Of those, the opportunities whose decision chain maps its key people (a "
                "decision-maker role, or high influence) and has reached every one of them."
            ),
            where=key_people_reached(),
            **chain,
        )
    )
    register_metric(
        Metric(
            key="opportunities.process_key_people_missing",
            label=_("Key people not reached"),
            definition=_(
                "Opportunities in play in the range with no key person mapped, or one not "
                "contacted yet."
            ),
            where=~key_people_reached(),
            **chain,
        )
    )
    register_rate(
        Rate(
            key="opportunities.process_key_person_coverage",
            label=_("Key-person coverage"),
            definition=_(
                "Opportunities in play whose key people are all mapped and reached ÷ the "
                "opportunities in play in the range."
            ),
            numerator="opportunities.process_key_people_reached",
            denominator="opportunities.process_in_play",
            target=KEY_PERSON_TARGET,
            section=SECTION,
            group=GROUP,
            advice=_(
                "Map who decides on each opportunity (the decision maker, and whoever has "
                "high influence) and reach each of them; the opportunity page says whom to "
                "reach next."
            ),
            act_on="opportunities.process_key_people_missing",
        )
    )

    objections = {
        "rows": objections_raised,
        "columns": OBJECTION_COLUMNS,
        "dimensions": OBJECTION_DIMENSIONS,
        "dated_by": "opened_at",
        "link": OBJECTION_LINK,
        "section": SECTION,
        "group": GROUP,
        "aggregate": COUNT,
    }
    register_metric(
        Metric(
            key="opportunities.process_objections_raised",
            label=_("Objections raised"),
            definition=_(
                "Technical questions and objections marked on opportunities in the range."
            ),
            **objections,
        )
    )
    register_metric(
        Metric(
            key="opportunities.process_objections_closed",
            label=_("Objections closed"),
            definition=_("Of those, the ones answered since."),
            where=Q(closed_at__isnull=False),
            **objections,
        )
    )
    register_metric(
        Metric(
            key="opportunities.process_objections_open",
            label=_("Objections open"),
            definition=_("Objections raised in the range that are still not answered."),
            where=Q(closed_at__isnull=True),
            **objections,
        )
    )
    register_rate(
        Rate(
            key="opportunities.process_objection_closure",
            label=_("Objection closure rate"),
            definition=_(
                "Objections raised in the range and answered since ÷ the objections raised "
                "in the range."
            ),
            numerator="opportunities.process_objections_closed",
            denominator="opportunities.process_objections_raised",
            target=OBJECTION_TARGET,
            section=SECTION,
            group=GROUP,
            advice=_(
                "Answer every open objection: bring the engineer or the reference case it "
                "needs, then mark it answered on the opportunity."
            ),
            act_on="opportunities.process_objections_open",
        )
    )
