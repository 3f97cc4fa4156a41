"""The site's URLs plus a `metric_rows` page, for the water-level tests: the drill-down
list of a figure's rows (crm.metrics.drill_url) is a page of its own, and these tests
only need its address. Used with `@pytest.mark.urls("tests.crm.levels_urls")`."""

from django.http import HttpResponse
from django.urls import path

from crm.urls import urlpatterns as site


def metric_rows(request, key):
    return HttpResponse(key, content_type="text/plain")


urlpatterns = [
    *site,
    path("reports/metrics/<str:key>/", metric_rows, name="metric_rows"),
]
