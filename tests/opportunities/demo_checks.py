"""What the demo's opportunities must show (checked on the one seed of
tests/leads/test_demo.py, which runs `seed_demo` once for the whole story)."""

from __future__ import annotations

from django.db.models import Count

from crm.tenancy import tenant_context
from opportunities import requirements
from opportunities.models import (
    Attachment,
    AttachmentStatus,
    EventKind,
    ForecastMonth,
    Opportunity,
    OpportunityContact,
    OpportunityEvent,
    Stage,
    StageCalibration,
    ValidityRequest,
)


def assert_opportunities_story(demo) -> None:
    with tenant_context(demo):
        stages = list(Stage.objects.order_by("position"))
        open_ = Opportunity.objects.filter(status="open")
        per_stage = dict(open_.values_list("stage__code").annotate(n=Count("id")))
        # every stage has open opportunities, with decision chains
        assert set(per_stage) == {s.code for s in stages}, per_stage
        assert OpportunityContact.objects.filter(opportunity__status="open").count() >= 30
        # some valid, some waiting for an approval
        assert open_.filter(is_valid=True).count() >= 8
        assert ValidityRequest.objects.filter(decided_at__isnull=True).count() >= 2
        # some blocked by one named missing action in their stage
        missing = requirements.missing_to_advance(open_.select_related("customer", "stage"))
        blocked = [m for _target, m in missing.values() if len(m) == 1]
        assert len(blocked) >= 3
        # won ones carry their signed, effective contract; lost ones a specific reason
        for won in Opportunity.objects.filter(status="won", created_at__gte=_recent()):
            assert Attachment.objects.filter(
                opportunity=won, kind__is_contract=True, status=AttachmentStatus.EFFECTIVE
            ).exists()
            assert won.lead_to_contract_days is not None
        assert not Opportunity.objects.filter(status="lost", lost_reason__isnull=True).exists()
        # a year of stage history, 20+ closed cases through every stage (the calibration)
        closed = Opportunity.objects.exclude(status="open")
        assert closed.count() >= 200
        for stage in stages:
            reached = (
                OpportunityEvent.objects.filter(
                    opportunity__in=closed,
                    kind__in=[EventKind.CREATED, EventKind.STAGE],
                    to_stage__position__gte=stage.position,
                )
                .values("opportunity")
                .distinct()
                .count()
            )
            assert reached >= 20, (stage.code, reached)
        # twelve months of frozen forecasts with their accuracy, and this month's frozen
        team = ForecastMonth.objects.filter(owner__isnull=True)
        assert team.count() == 13
        assert team.filter(closed_at__isnull=True).count() == 1
        assert team.filter(accuracy__isnull=False).count() >= 8
        # probabilities learnt from the history
        assert StageCalibration.objects.filter(calibrated=True).count() == len(stages)
    assert_cycle_story(demo)


def assert_cycle_story(demo) -> None:
    """The history's leads make cohorts (F38); last night's activity index gives every rep
    leads to rescue (F41)."""
    from datetime import timedelta

    from django.utils import timezone

    from crm import metrics
    from crm.models import Membership, Role
    from leads.activity.rescue import rescue_rows
    from leads.models import ActivityRun, LeadActivity
    from opportunities import cycle_metrics as cm
    from opportunities.cycle import is_mature
    from opportunities.forecast import add_months

    with tenant_context(demo):
        # Every closed opportunity of the history came from a lead, its cycle from its
        # verification.
        history = Opportunity.objects.exclude(status="open").filter(origin_lead__isnull=False)
        assert history.count() >= 200
        for won in history.filter(status="won").select_related("origin_lead")[:50]:
            assert won.cycle_started_at == won.origin_lead.verified_at
            days = (won.won_at - won.cycle_started_at).days
            assert won.lead_to_contract_days == max(0, days)  # as opportunity_win counts
        # Cohorts with contracts, old enough ones with valid leads to share out.
        month = timezone.localdate(timezone=demo.tzinfo).replace(day=1)
        start, end = add_months(month, -11), add_months(month, 1) - timedelta(days=1)
        found = [metrics.get_metric(k) for k in (cm.WON, cm.MATURED, cm.MEDIAN_DAYS)]
        cohorts = metrics.values_by(found, cm.COHORT, tenant=demo, start=start, end=end)
        assert sum(1 for v in cohorts.values() if v.get(cm.WON)) >= 6
        mature = [m for m in cohorts if is_mature(demo, m.date())]
        assert len(mature) >= 3 and all(cohorts[m][cm.MATURED] for m in mature)
        assert metrics.value(found[2], tenant=demo, start=start, end=end) is not None
        # The activity index of today, and leads below 75 for every rep.
        today = timezone.localdate(timezone=demo.tzinfo)
        assert ActivityRun.objects.filter(day=today).exists()
        reps = Membership.objects.filter(tenant=demo, role=Role.REP)
        for rep in reps:
            assert LeadActivity.objects.filter(day=today, owner=rep, score__lt=75).exists(), rep
        assert rescue_rows(reps.get(user__username="rep1"), today).exists()


def _recent():
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(days=30)
