"""The health recompute written the plain way: per customer, with the ORM, in Python.

Two uses: the oracle the set-based SQL (health.compute) is tested against (a property
test on random histories: identical values and scores), and the naive loop the benchmark
times it against. Never called by the product.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from fractions import Fraction

from django.db import connection

from crm import customer_facts
from crm.models import Tenant
from customers.models import Customer, Interaction
from health import compute
from health.models import HealthSettings, LinkKind, Signal, SignalKind, TrackedLink


def _ticket_facts(tenant: Tenant, customer_id: int, since, until) -> list[int]:
    sql = customer_facts.sql_for(customer_facts.TICKET_RESOLVED)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT value FROM ({sql}) f WHERE customer_id = %(customer)s"  # noqa: S608
            " AND at >= %(since)s AND at < %(until)s",
            {"tenant": tenant.pk, "customer": customer_id, "since": since, "until": until},
        )
        return [row[0] for row in cursor.fetchall()]


def customer_values(tenant: Tenant, customer: Customer, day: date) -> dict[str, float | None]:
    """The six values of one customer for `day` (None: no data), as compute's table says."""
    moment = compute.as_of(tenant, day)
    interactions = Interaction.objects.filter(customer=customer, at__lt=moment)
    last = interactions.order_by("-at").values_list("at", flat=True).first()
    values: dict[str, float | None] = dict.fromkeys(compute.DIMENSIONS)
    if last is not None:
        values["recency"] = float(math.floor((moment - last).total_seconds() / 86400))
        since = moment - timedelta(days=compute.FREQUENCY_DAYS)
        values["frequency"] = float(interactions.filter(at__gte=since).count())
    facts = _ticket_facts(
        tenant, customer.pk, moment - timedelta(days=compute.SERVICE_DAYS), moment
    )
    if facts:
        values["service"] = float(Fraction(100 * sum(facts), len(facts)))
    signals = Signal.objects.filter(customer=customer, at__lt=moment)
    links = TrackedLink.objects.filter(customer=customer, sent_at__lt=moment)
    any_download = signals.filter(kind=SignalKind.DOWNLOAD).exists()
    if any_download or links.filter(kind=LinkKind.DOCUMENT).exists():
        since = moment - timedelta(days=compute.DOWNLOAD_DAYS)
        values["downloads"] = float(signals.filter(kind=SignalKind.DOWNLOAD, at__gte=since).count())
    quotes = links.filter(
        kind=LinkKind.QUOTE, sent_at__gte=moment - timedelta(days=compute.QUOTE_DAYS)
    )
    sent = quotes.count()
    if sent:
        opened = quotes.filter(first_opened_at__lt=moment).count()
        values["quotes"] = float(Fraction(100 * opened, sent))
    if signals.exists():
        since = moment - timedelta(days=compute.COMPETITOR_DAYS)
        values["competitor"] = float(
            signals.filter(kind=SignalKind.COMPETITOR_SEARCH, at__gte=since).count()
        )
    return values


def score_customer(tenant: Tenant, customer: Customer, day: date, settings=None) -> dict:
    """Values, scores, the overall score and coverage of one customer for `day`."""
    settings = settings or HealthSettings.for_tenant(tenant, create=False)
    table, weights = settings.band_table(), settings.weights()
    values = customer_values(tenant, customer, day)
    scores = {d: compute.band_score(d, values[d], table) for d in compute.DIMENSIONS}
    score, coverage = compute.overall(scores, weights)
    return {
        "customer_id": customer.pk,
        "values": values,
        "scores": scores,
        "score": score,
        "coverage": coverage,
        "weakest": compute.weakest(scores, weights),
    }


def score_all(tenant: Tenant, day: date, settings=None) -> dict[int, dict]:
    """Every customer, one after another (the naive loop)."""
    settings = settings or HealthSettings.for_tenant(tenant, create=False)
    return {
        c.pk: score_customer(tenant, c, day, settings)
        for c in Customer.objects.filter(tenant=tenant, created_at__lt=compute.as_of(tenant, day))
        .order_by("pk")
        .iterator()
    }
