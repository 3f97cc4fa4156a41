"""The site's URLs: the kernel's own pages, then each app's, included by module name
(the kernel imports no app)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from crm import (
    exports_views,
    login,
    metric_catalogue,
    notify_views,
    selftest_views,
    views,
    views_dashboard,
    views_levels,
    views_metric_rows,
    views_process,
)
from crm.middleware import tenant_exempt

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", tenant_exempt(views.favicon), name="favicon"),
    path(
        "accounts/login/",
        login.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", tenant_exempt(auth_views.LogoutView.as_view()), name="logout"),
    path(
        "accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("tenants/<slug:slug>/switch/", views.tenant_switch, name="tenant_switch"),
    path("team/", views.team, name="team"),
    path("dashboard/", views_dashboard.dashboard_view, name="dashboard"),
    path("notifications/", notify_views.notification_list, name="notifications"),
    path("notifications/bell/", notify_views.bell, name="notifications_bell"),
    path(
        "notifications/read-all/",
        notify_views.notifications_read_all,
        name="notifications_read_all",
    ),
    path(
        "notifications/preferences/",
        notify_views.notification_preferences,
        name="notification_preferences",
    ),
    path(
        "notifications/<uuid:public_id>/open/",
        notify_views.notification_open,
        name="notification_open",
    ),
    path("exports/", exports_views.export_list, name="exports"),
    path("exports/new/", exports_views.export_create, name="export_create"),
    path(
        "exports/<uuid:public_id>/download/",
        exports_views.export_download,
        name="export_download",
    ),
    # Every figure the product shows, defined once (crm.metrics), with this month's value.
    path("reports/metrics/", metric_catalogue.metric_catalogue, name="metrics"),
    path("reports/levels/", views_levels.levels_page, name="levels"),
    # A figure's rows (crm.metric_rows): the key holds dots ("leads.delivered").
    path("reports/metrics/<str:key>/", views_metric_rows.metric_rows, name="metric_rows"),
    path("reports/process/", views_process.process_report, name="process_report"),
    path(
        "reports/process/diagnosis/",
        views_process.process_diagnoses,
        name="process_diagnoses",
    ),
    path(
        "reports/process/diagnosis/<uuid:public_id>/",
        views_process.process_diagnosis,
        name="process_diagnosis",
    ),
    path("admin/", admin.site.urls),
    # Public endpoints, found by the channel's unguessable key (no log-in): /hooks/<key>/,
    # /f/<key>/ and its QR code, named without a namespace.
    path("", include("leads.intake.public_urls")),
    path("", include("health.urls_track")),  # /track/<key>/, /t/<token>, link sending
    path("customers/", include("customers.urls")),
    path("leads/", include("leads.urls")),
    path("board/", include("leads.board.urls")),
    path("opportunities/", include("opportunities.urls")),
    path("service/", include("service_feedback.urls")),
    path("health/", include("health.urls")),
    path("automation/", include("automation.urls")),
    path("reports/self-test/", selftest_views.self_test, name="self_test"),
    path("reports/", include("leads.reports.urls")),
    path("reports/", include("service_feedback.report_urls")),
    path("reports/", include("opportunities.report_urls")),
]
