"""The health panel of the customer page (crm.contributions, issue item 4): the latest
score with its coverage and each dimension's value, band, score, weight and contribution;
the change since yesterday and since 30 days ago with the dimension that moved it most;
the 90-day trend (static/health/panel.js draws it with ECharts).

Two queries whatever the history: the tenant's settings and the customer's snapshots of
the last 91 days (their columns only). A customer not scored yet (no snapshot in the
window) is computed now without writing (health.compute.values_for, one more query) and
said to be so. The arithmetic is health.explain's.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext

from health import compute, explain
from health.models import HealthSettings, HealthSnapshot

TEMPLATE = "health/panel_health.html"
CUSTOMER_PAGE = "customers.customer"  # customers.views.PAGE
TREND_DAYS = 90
# "Since yesterday" and "since 30 days ago": days before the latest snapshot.
COMPARED = ((1, "yesterday"), (30, "30 days ago"))


def snapshots(tenant, customer, first, last, weights) -> list[explain.Snap]:
    """The customer's snapshots from `first` to `last`, oldest first: one query (one
    without its weights read with `weights`)."""
    rows = (
        HealthSnapshot.objects.filter(
            tenant=tenant, customer=customer, day__gte=first, day__lte=last
        )
        .order_by("day")
        .values(*explain.SNAPSHOT_FIELDS)
    )
    return [explain.Snap.from_row(row, weights) for row in rows]


def health_context(tenant, customer) -> dict:
    """What the panel shows about `customer` (of `tenant`, inside its tenant context)."""
    settings = HealthSettings.for_tenant(tenant, create=False)
    weights, bands = settings.weights(), settings.band_table()
    today = compute.local_today(tenant)
    first = today - timedelta(days=TREND_DAYS)
    snaps = snapshots(tenant, customer, first, today, weights)
    if snaps:
        latest, live = snaps[-1], False
    else:
        row = compute.values_for(tenant, today, [customer.pk], settings).get(customer.pk, {})
        latest, live = explain.Snap.from_computed(today, row, weights), True
    explanation = explain.explain(latest, bands, live=live)
    changes = []
    if not live:
        earlier = snaps[:-1]
        for days, key in COMPARED:
            before = explain.on_or_before(earlier, latest.day - timedelta(days=days))
            changes.append({"key": key, "change": explain.change(before, latest)})
    points = explain.trend(snaps, first, today)
    chart = {
        "days": [day.isoformat() for day, _score in points],
        "scores": [score for _day, score in points],
        "threshold": settings.risk_score_below,
        "labels": {
            "score": gettext("Health score"),
            "threshold": gettext("At risk below %(n)s") % {"n": settings.risk_score_below},
            "none": gettext("No data yet"),
        },
    }
    return {
        "customer": customer,
        "explanation": explanation,
        "changes": changes,
        "chart": chart,
        "has_trend": any(score is not None for score in chart["scores"]),
        "risk_below": settings.risk_score_below,
        "today": today,
    }


def customer_panel(request, membership, customer):
    """The customer page's panel (crm.contributions.register_panel)."""
    return TEMPLATE, health_context(membership.tenant, customer)
