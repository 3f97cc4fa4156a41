"""The public endpoints of lead intake, found by the channel's unguessable key (no log-in):
the signed webhook and the hosted lead form with its QR code. Included from crm/urls.py at
the site's root, without a namespace: `hook`, `lead_form`, `lead_form_qr`."""

from django.urls import path

from leads.intake import hooks, public

urlpatterns = [
    path("hooks/<str:key>/", hooks.receive, name="hook"),
    path("f/<str:key>/", public.lead_form, name="lead_form"),
    path("f/<str:key>/qr.<str:fmt>", public.lead_form_qr, name="lead_form_qr"),
]
