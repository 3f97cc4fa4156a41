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


def _recent():
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(days=30)
