"""Reports on leads, under /reports/ (crm/urls.py)."""

from django.urls import path

from leads.reports import views as report_views

app_name = "lead_reports"

urlpatterns = [
    path("lead-quality/", report_views.lead_quality, name="lead_quality"),
]
