"""Customer health's pages, included from crm/urls.py at `health/`."""

from django.urls import path

from health import views_risk

app_name = "health"

urlpatterns = [
    path("risk/", views_risk.risk_list, name="risk_list"),
    path("risk/<uuid:public_id>/done/", views_risk.risk_done, name="risk_done"),
]
