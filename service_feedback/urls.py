from django.urls import path
from django.views.generic import RedirectView

from service_feedback import urls_effects, views

app_name = "service_feedback"

urlpatterns = [
    # /service/ itself opens the ticket list.
    path("", RedirectView.as_view(pattern_name="service_feedback:tickets"), name="index"),
    path("tickets/", views.ticket_list, name="tickets"),
    path("tickets/unmatched/", views.unmatched, name="unmatched"),
    path("tickets/<uuid:public_id>/", views.ticket_detail, name="ticket"),
    path("tickets/<uuid:public_id>/link/", views.ticket_link, name="link"),
    # The effects' pages: the quality alerts and the review card's read receipt.
    *urls_effects.urlpatterns,
]
