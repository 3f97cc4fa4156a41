"""The opportunities' reports under /reports/ (crm/urls.py): /reports/cycle/."""

from opportunities.views_cycle import urlpatterns

app_name = "opportunity_reports"

__all__ = ["app_name", "urlpatterns"]
