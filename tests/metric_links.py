"""Following a figure's link (crm.metrics.drill_url) to the rows behind it, for the tests
of pages whose numbers link to `metric_rows`.

`rows_behind(url, tenant)` reads the link's metric, range and filters and returns the
rows the kernel's drill-down lists for them (crm.metrics.drill_down), so a test proves
"the number equals the rows its link opens" from the link itself."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl, urlsplit

from django.urls import resolve

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
