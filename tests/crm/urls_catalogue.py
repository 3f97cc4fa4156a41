"""The site's URLs plus a page named `metric_rows` (/reports/metrics/<key>/), which
crm.metrics.drill_url reverses: for the tests of the links to a figure's rows, with
@pytest.mark.urls("tests.crm.urls_catalogue"), until the drill-down page is in crm.urls."""

from django.http import HttpResponse
from django.urls import include, path


def _rows(request, key):
    return HttpResponse(key, content_type="text/plain")


urlpatterns = [
    path("reports/metrics/<str:key>/", _rows, name="metric_rows"),
    path("", include("crm.urls")),
]
