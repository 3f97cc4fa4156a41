"""The site's URLs plus a stand-in for the metric drill-down page (`metric_rows`), so the
process pages' links reverse in these tests: it answers the metric's key."""

from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("reports/metrics/<str:key>/", lambda request, key: HttpResponse(key), name="metric_rows"),
    path("", include("crm.urls")),
]
