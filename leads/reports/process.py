"""The sales process figures of the leads app (F37) in the kernel's metric registry, group
"process": how fast and how surely each rep works the leads they are given, and whether
they keep the next steps they commit to. Registered from LeadsConfig.ready(); the kernel's
process report and weekly diagnosis (crm.process) read them by their group, never by
this module. docs/process.md writes the definitions out.

Two families of rows, each one query per figure set (crm.metrics.values_of):

- `assigned_in`: the leads assigned in the period to the owner they have now (a lead
  handed to someone else counts for its new owner, from the new hand-over), annotated
  with the minutes from that assignment to the first touch. Its figures: the leads
  assigned, those first touched after it, the median of those minutes, and the 72 h
  follow-up rate.
- `steps_due`: the next steps the reps set themselves ("before DATE do ACTION", the
  customers app's Interaction: every follow-up sets one, and so does a valid verdict)
  falling due on the period's days. Its figures: the steps due, and those done on time.

A rate's numerator is its denominator's family and condition plus one more, so its rows
are among the denominator's; `act_on` names the rows that miss, what to work on.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import (
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    MEDIAN,
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
from leads.models import Lead
from leads.reports.quality import INVALID

GROUP = "process"
SECTION = _("Sales process")
FOLLOW_UP_WINDOW = timedelta(hours=72)
FOLLOW_UP_TARGET = 0.9
STEPS_TARGET = 0.85  # brief 001: weekly task completion ≥ 85 %


class Epoch(Func):
    """The seconds of an interval (PostgreSQL's EXTRACT(EPOCH FROM …)), as a float."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


def _column(model, path: str) -> Column:
    first = path.split("__", 1)[0]
    return Column(path, capfirst(model._meta.get_field(first).verbose_name))


# -- the leads assigned in the period ----------------------------------------------------------


def assigned_in(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The tenant's leads with an owner, assigned (to that owner: `assigned_at` is the last
    hand-over) on its local days [start, end], with `first_touch_minutes`: the minutes
    from the assignment to the first touch (negative or None when there is none after
    it)."""
    since, until = period_bounds(tenant, start, end)
    return Lead.objects.filter(
        tenant=tenant, owner__isnull=False, assigned_at__gte=since, assigned_at__lt=until
    ).annotate(
        first_touch_minutes=ExpressionWrapper(
            Epoch(F("first_touch_at") - F("assigned_at")) / 60.0, output_field=FloatField()
        )
    )


def touched_q() -> Q:
    """First touched after the assignment (a lead handed over verified keeps its earlier
    touches: they are not its new owner's)."""
    return Q(first_touch_at__isnull=False, first_touch_at__gte=F("assigned_at"))


def followed_72h_q() -> Q:
    """A follow-up by the owner within 72 h of the assignment: a customers.Interaction on
    the lead by its owner at assigned_at ≤ at ≤ assigned_at + 72 h (a logged follow-up, or
    the verification call that set the lead's next step). Read from the lead's
    `followed_up_72h`, which triggers keep (leads migration 0023)."""
    return Q(followed_up_72h=True)


def invalid_72h_q() -> Q:
    """Verified invalid within 72 h of the assignment (or before it): it takes no
    follow-up."""
    return Q(verification__in=INVALID, verified_at__lte=F("assigned_at") + FOLLOW_UP_WINDOW)


def follow_up_due(tenant: Tenant) -> Q:
    """The leads the 72 h follow-up rate counts: not verified invalid within the 72 h, and
    either their 72 h have run out or they were followed up within them (a lead assigned
    an hour ago is not a miss yet)."""
    ran_out = Q(assigned_at__lte=timezone.now() - FOLLOW_UP_WINDOW)
    return ~invalid_72h_q() & (ran_out | followed_72h_q())


def followed_up(tenant: Tenant) -> Q:
    return ~invalid_72h_q() & followed_72h_q()


def not_followed_up(tenant: Tenant) -> Q:
    ran_out = Q(assigned_at__lte=timezone.now() - FOLLOW_UP_WINDOW)
    return ~invalid_72h_q() & ran_out & ~followed_72h_q()


LEAD_COLUMNS = (
    *(
        _column(Lead, path)
        for path in (
            "public_id",
            "assigned_at",
            "company",
            "channel__name",
            "source_grade",
            "owner__user__username",
            "first_touch_at",
            "verification",
        )
    ),
    Column("first_touch_minutes", _("minutes to first touch")),
)
LEAD_DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "owner"))
LEAD_LINK = RowLink("leads:detail", "public_id")


# -- the next steps due in the period ----------------------------------------------------------


def steps_due(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The next steps (customers.Interaction: "before `next_action_due` do `next_action`")
    due on the tenant's local days [start, end], with `done_on`: the local day they were
    done (None while open)."""
    from customers.models import Interaction

    return Interaction.objects.filter(
        tenant=tenant, next_action_due__gte=start, next_action_due__lte=end
    ).annotate(done_on=TruncDate("next_done_at", tzinfo=tenant.tzinfo))


def on_time_q() -> Q:
    """Done by the end of its due day (the tenant's local day)."""
    return Q(next_done_at__isnull=False, done_on__lte=F("next_action_due"))


def handed_over_q() -> Q:
    """Closed by a hand-over, not by the rep: the lead went to someone else or to the pool
    at the very moment the step closed (leads.assignment.dispatch closes the leaving rep's
    open steps with the decision's time)."""
    from leads.models import AssignmentDecision

    return Q(
        Exists(
            AssignmentDecision.objects.filter(
                lead=OuterRef("lead"), decided_at=OuterRef("next_done_at")
            )
        )
    )


def step_settled(tenant: Tenant) -> Q:
    """Done, or its due day is over (a step due later today is not a miss yet)."""
    today = timezone.localdate(timezone=tenant.tzinfo)
    return Q(next_done_at__isnull=False) | Q(next_action_due__lt=today)


def steps_counted(tenant: Tenant) -> Q:
    """The steps the completion rate counts: settled, and not closed on time by a hand-over
    (the lead left the rep before the step was due: it was no longer theirs to do)."""
    return step_settled(tenant) & ~(on_time_q() & handed_over_q())


def steps_on_time(tenant: Tenant) -> Q:
    return on_time_q() & ~handed_over_q()


def steps_missed(tenant: Tenant) -> Q:
    return step_settled(tenant) & ~on_time_q()


def _step_columns() -> tuple[Column, ...]:
    from customers.models import Interaction

    return tuple(
        _column(Interaction, path)
        for path in (
            "at",
            "customer__name",
            "lead__company",
            "by__user__username",
            "next_action__name",
            "next_action_due",
            "next_done_at",
        )
    )


STEP_DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "by"))
STEP_LINK = RowLink("customers:detail", "customer__public_id")


def register() -> None:
    common = {
        "rows": assigned_in,
        "columns": LEAD_COLUMNS,
        "dimensions": LEAD_DIMENSIONS,
        "dated_by": "assigned_at",
        "link": LEAD_LINK,
        "section": SECTION,
        "group": GROUP,
    }
    register_metric(
        Metric(
            key="leads.process_assigned",
            label=_("Leads assigned"),
            definition=_(
                "Leads assigned in the range to the owner they have now (a lead handed "
                "over counts for its new owner)."
            ),
            aggregate=COUNT,
            **common,
        )
    )
    register_metric(
        Metric(
            key="leads.process_touched",
            label=_("First touched"),
            definition=_(
                "Leads assigned in the range that their owner has touched since the "
                "assignment: the leads the first-touch median is taken over."
            ),
            where=touched_q(),
            aggregate=COUNT,
            **common,
        )
    )
    register_metric(
        Metric(
            key="leads.process_first_touch_median",
            label=_("First-touch median"),
            definition=_(
                "The median of the minutes from assignment to the owner's first touch, over "
                "the leads assigned in the range and touched since."
            ),
            where=touched_q(),
            aggregate=MEDIAN,
            of="first_touch_minutes",
            unit="minutes",
            **common,
        )
    )
    register_metric(
        Metric(
            key="leads.process_follow_up_due",
            label=_("Leads due a follow-up"),
            definition=_(
                "Leads assigned in the range, not verified invalid within 72 hours, whose "
                "72 hours have run out or that were followed up within them."
            ),
            where=follow_up_due,
            aggregate=COUNT,
            **common,
        )
    )
    register_metric(
        Metric(
            key="leads.process_followed_72h",
            label=_("Followed up within 72 h"),
            definition=_(
                "Of those, the leads their owner followed up (a logged follow-up or the "
                "verification call) within 72 hours of the assignment."
            ),
            where=followed_up,
            aggregate=COUNT,
            **common,
        )
    )
    register_metric(
        Metric(
            key="leads.process_not_followed_72h",
            label=_("Not followed up within 72 h"),
            definition=_(
                "Leads assigned in the range whose 72 hours ran out without a follow-up by "
                "their owner (those verified invalid within them left out)."
            ),
            where=not_followed_up,
            aggregate=COUNT,
            **common,
        )
    )
    register_rate(
        Rate(
            key="leads.process_follow_up_72h",
            label=_("72 h follow-up rate"),
            definition=_(
                "Leads followed up by their owner within 72 hours of the assignment ÷ the "
                "leads assigned in the range that were due a follow-up."
            ),
            numerator="leads.process_followed_72h",
            denominator="leads.process_follow_up_due",
            target=FOLLOW_UP_TARGET,
            section=SECTION,
            group=GROUP,
            advice=_(
                "Log a follow-up on every new lead within 72 hours: call, agree the next "
                "step, and write it down. Start with the leads listed here."
            ),
            act_on="leads.process_not_followed_72h",
        )
    )

    steps = {
        "rows": steps_due,
        "columns": _step_columns(),
        "dimensions": STEP_DIMENSIONS,
        "dated_by": "next_action_due",
        "link": STEP_LINK,
        "section": SECTION,
        "group": GROUP,
        "aggregate": COUNT,
    }
    register_metric(
        Metric(
            key="leads.process_steps_due",
            label=_("Next steps due"),
            definition=_(
                "Next steps the reps set themselves (on a follow-up or a verdict) due on the "
                "range's days, done or past their day; those a hand-over closed before they "
                "were due are left out."
            ),
            where=steps_counted,
            **steps,
        )
    )
    register_metric(
        Metric(
            key="leads.process_steps_on_time",
            label=_("Next steps done on time"),
            definition=_("Of those, the steps done by the end of their due day (local time)."),
            where=steps_on_time,
            **steps,
        )
    )
    register_metric(
        Metric(
            key="leads.process_steps_missed",
            label=_("Next steps missed"),
            definition=_(
                "Next steps due on the range's days that were done after their day, or are "
                "still open with their day over."
            ),
            where=steps_missed,
            **steps,
        )
    )
    register_rate(
        Rate(
            key="leads.process_action_completion",
            label=_("Action completion rate"),
            definition=_(
                "Next steps done by the end of their due day ÷ the next steps due in the "
                "range (done, or with their day over)."
            ),
            numerator="leads.process_steps_on_time",
            denominator="leads.process_steps_due",
            target=STEPS_TARGET,
            section=SECTION,
            group=GROUP,
            advice=_(
                "Set next steps you can keep, and keep them: open your board each morning "
                "and do today's steps first. The late and open ones are listed here."
            ),
            act_on="leads.process_steps_missed",
        )
    )
