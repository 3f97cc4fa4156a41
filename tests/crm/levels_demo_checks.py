"""What the demo's water levels must show (checked on the one seed of
tests/leads/test_demo.py, which runs `seed_demo` once for the whole story):
`assert_levels_story(demo)`."""

from __future__ import annotations

from django.utils import timezone

from crm import levels
from crm.levels import Verdict
from crm.models import LevelDay, Membership, Notification
from crm.tenancy import tenant_context


def assert_levels_story(demo) -> None:
    today = timezone.localdate(timezone=demo.tzinfo)
    start, end = levels.window_of(today)
    with tenant_context(demo):
        rows = list(LevelDay.objects.filter(day__gte=start, day__lte=end))
        # 28 recorded days of every level, for the team: a value on each day with rows,
        # none (a gap, never a made-up figure) on a day without, and most days with rows.
        for level in levels.levels():
            team = [r for r in rows if r.key == level.key and r.owner_id is None]
            assert len(team) == levels.WINDOW, level.key
            assert all((r.value is None) == (r.sample == 0) for r in team), level.key
            assert sum(r.value is not None for r in team) >= levels.WINDOW // 2, level.key
        # Anomalies, each outside its band, on enough rows, told once to its owner.
        flagged = [r for r in rows if r.anomaly]
        assert flagged
        for row in flagged:
            level = levels.get_level(row.key)
            low, high = Verdict(True, row.median, row.mad).band(level.floor)
            assert not low <= row.value <= high, row
            assert row.sample >= level.min_sample
            assert row.notified_at is not None
        notes = Notification.objects.filter(event=levels.ANOMALY_EVENT)
        assert notes.count() >= len(flagged)
        assert all(n.link.startswith("/reports/metrics/") for n in notes)
        # rep5 answers a day late lately: their response time left its band.
        rep5 = Membership.objects.get(tenant=demo, user__username="rep5")
        assert any(r.key == "leads.response" and r.owner_id == rep5.pk for r in flagged)
