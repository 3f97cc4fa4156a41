"""Following a figure's link (crm.metrics.drill_url) to the rows behind it, for the tests
of pages whose numbers link to `metric_rows`.

`rows_behind(url, tenant)` reads the link's metric, range and filters and returns the
rows the kernel's drill-down lists for them (crm.metrics.drill_down), so a test proves
"the number equals the rows its link opens" from the link itself.

`metric_rows_route` is a fixture for checkouts whose URLconf has no `metric_rows` route
yet: it serves the project's URLs plus that one route (answering 204), so that pages
can reverse their links; with the kernel's page present it changes nothing."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.http import HttpResponse
from django.urls import NoReverseMatch, path, resolve, reverse

from crm import metrics
from crm.tenancy import tenant_context


def parse(url: str) -> tuple[str, date, date, dict]:
    """(metric key, start, end, filters) of a drill-down link."""
    parts = urlsplit(url)
    key = resolve(parts.path).kwargs["key"]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    start = date.fromisoformat(query.pop("start"))
    end = date.fromisoformat(query.pop("end"))
    filters = {name: int(value) if value.isdigit() else value for name, value in query.items()}
    return key, start, end, filters


def rows_behind(url: str, tenant) -> list[tuple]:
    key, start, end, filters = parse(url)
    metric = metrics.get_metric(key)
    with tenant_context(tenant):
        return metrics.drill_down(metric, tenant=tenant, start=start, end=end, filters=filters)


def _answered(request, key):
    return HttpResponse(status=204)


urlpatterns: list = []


@pytest.fixture
def metric_rows_route(settings):
    try:
        reverse("metric_rows", args=["x"])
    except NoReverseMatch:
        from crm.urls import urlpatterns as project

        urlpatterns[:] = [
            *project,
            path("reports/metrics/<str:key>/", _answered, name="metric_rows"),
        ]
        settings.ROOT_URLCONF = __name__
    yield
