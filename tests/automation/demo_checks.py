"""What `seed_demo` leaves for automation (called from tests/leads/test_demo.py on the
same seed): the risk preset on, and a business event log of the last 30 days, at the
times things happened, on which the presets' dry runs find something to do — among them
one customer asking about the same model three times in 30 days."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from automation.dryrun import replay
from automation.models import Rule
from automation.presets import presets
from crm.models import OutboxEvent
from crm.tenancy import tenant_context


def assert_automation_story(demo) -> None:
    now = timezone.now()
    with tenant_context(demo):
        assert Rule.objects.filter(action="retention_task", is_active=True).count() == 1
        month = OutboxEvent.objects.filter(at__gte=now - timedelta(days=30))
        kinds = set(month.values_list("kind", flat=True))
        assert {"ticket.opened", "lead.created", "lead.assigned", "followup.logged"} <= kinds
        # A log over the month, not a burst at the seed's moment: tickets and leads on
        # many different days, none in the future.
        for kind in ("ticket.opened", "lead.created"):
            days = {e.date() for e in month.filter(kind=kind).values_list("at", flat=True)}
            assert len(days) >= 10, (kind, len(days))
        assert not OutboxEvent.objects.filter(at__gt=now).exists()
        # The presets' dry runs (unsaved rules, nothing written) show non-zero figures.
        by_trigger = {p["trigger"]: p for p in presets() if not p.get("wait_hours")}
        same_model = Rule(tenant=demo, **by_trigger["ticket.opened"])
        result = replay(same_model, now=now)
        assert result.events >= 20 and result.fired >= 1 and result.recipients, result
        no_follow_up = Rule(tenant=demo, **next(p for p in presets() if p.get("wait_hours")))
        assert replay(no_follow_up, now=now).events >= 50
