"""What the demo's customer health must show (checked on the one seed of
tests/leads/test_demo.py, which runs `seed_demo` once for the whole story):
`assert_health_story(demo)`."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Min

from crm.tenancy import tenant_context
from customers.models import Customer
from health import compute
from health.demo import AWAY, COMPETITORS, DAYS
from health.models import HealthSettings, HealthSnapshot, RiskEntry, Signal, SignalKind, TrackedLink


def assert_health_story(demo) -> None:
    today = compute.local_today(demo)
    first = today - timedelta(days=DAYS - 1)
    with tenant_context(demo):
        settings = HealthSettings.objects.get()
        assert settings.computed_on == today
        assert set(settings.competitor_list()) == set(COMPETITORS)

        # Six months of every kind of signal; competitor searches name a keyword.
        signals = Signal.objects.all()
        kinds = set(signals.values_list("kind", flat=True))
        assert kinds >= {
            SignalKind.DOWNLOAD,
            SignalKind.QUOTE_OPEN,
            SignalKind.VISIT,
            SignalKind.COMPETITOR_SEARCH,
        }, kinds
        span = signals.aggregate(first=Min("at"), last=Max("at"))
        assert span["last"] - span["first"] >= timedelta(days=DAYS - 20)
        searches = signals.filter(kind=SignalKind.COMPETITOR_SEARCH)
        assert searches.count() >= 20
        assert set(searches.values_list("competitor", flat=True)) <= set(COMPETITORS)
        assert all(s.competitor in s.query for s in searches)
        # Quotes sent, some opened and some not.
        quotes = TrackedLink.objects.filter(kind="quote")
        assert quotes.filter(first_opened_at__isnull=False).exists()
        assert quotes.filter(first_opened_at__isnull=True).exists()

        # A snapshot for every day of the last 180 for a customer of earlier years, and
        # today's for every customer that existed when today began (the recompute's rule:
        # the demo's leads make customers of their own earlier today).
        per_customer = (
            HealthSnapshot.objects.values("customer")
            .annotate(days=Count("id"), first=Min("day"), last=Max("day"))
            .order_by("-days")
        )
        longest = per_customer[0]
        assert longest["days"] == DAYS and longest["first"] == first, longest
        assert longest["last"] == today
        existing = Customer.objects.filter(created_at__lt=compute.as_of(demo, today))
        assert HealthSnapshot.objects.filter(day=today).count() == existing.count()

        # Today's scores vary: many distinct values, some healthy, some below 60, and
        # dimensions with and without data (coverage below 6 somewhere).
        scores = list(
            HealthSnapshot.objects.filter(day=today, score__isnull=False).values_list(
                "score", flat=True
            )
        )
        assert len(set(scores)) >= 8, sorted(set(scores))
        assert sum(1 for s in scores if s < 60) >= 3, sorted(scores)
        assert sum(1 for s in scores if s >= 80) >= 3, sorted(scores)
        coverages = set(HealthSnapshot.objects.filter(day=today).values_list("coverage", flat=True))
        assert len(coverages) >= 2, coverages

        # Trends move: a customer's score 90 days ago differs from today's by 25 or more
        # for some customers, falling for some and rising for others.
        then = dict(
            HealthSnapshot.objects.filter(
                day=today - timedelta(days=90), score__isnull=False
            ).values_list("customer_id", "score")
        )
        now = dict(
            HealthSnapshot.objects.filter(day=today, score__isnull=False).values_list(
                "customer_id", "score"
            )
        )
        moves = [now[c] - then[c] for c in then.keys() & now.keys()]
        assert sum(1 for m in moves if m <= -25) >= 3, sorted(moves)
        assert any(m >= 15 for m in moves), sorted(moves)

        # The risk list: several open entries on reps' boards (open tasks with an owner),
        # entries that left with their task done; every open one qualifies today.
        open_entries = RiskEntry.objects.filter(left_on__isnull=True)
        assert open_entries.filter(owner__isnull=False, done_at__isnull=True).count() >= 3
        owners = set(open_entries.values_list("owner__user__username", flat=True))
        assert owners - {AWAY, None}, owners
        left = RiskEntry.objects.filter(left_on__isnull=False)
        assert left.count() >= 2
        assert not left.filter(done_at__isnull=True).exists()
        assert left.filter(entered_on__lt=today - timedelta(days=60)).exists()
        for entry in open_entries:
            snap = HealthSnapshot.objects.get(customer=entry.customer_id, day=today)
            assert snap.score < settings.risk_score_below
            assert snap.recency_value >= settings.risk_quiet_days
            assert entry.action
