"""Customer health's pages, included from crm/urls.py at `health/`."""

from django.urls import path
from django.views.generic import RedirectView

from health import views_risk

app_name = "health"

urlpatterns = [
    # /health/ itself opens the risk list, the section's one page.
    path("", RedirectView.as_view(pattern_name="health:risk_list"), name="index"),
    path("risk/", views_risk.risk_list, name="risk_list"),
    path("risk/<uuid:public_id>/done/", views_risk.risk_done, name="risk_done"),
]
