"""The site's URLs plus a stand-in for the metrics' drill-down page (`metric_rows`), which
its own module serves: the self-test's tests only need its links to resolve."""

from django.http import HttpResponse
from django.urls import path

from crm.urls import urlpatterns as site


def metric_rows(request, key: str) -> HttpResponse:
    return HttpResponse(key, content_type="text/plain")


urlpatterns = [
    path("reports/metrics/<str:key>/", metric_rows, name="metric_rows"),
    *site,
]
