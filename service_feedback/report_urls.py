"""The service report under /reports/ (crm/urls.py): /reports/service/."""

from service_feedback.views_report import urlpatterns

app_name = "service_report"

__all__ = ["app_name", "urlpatterns"]
