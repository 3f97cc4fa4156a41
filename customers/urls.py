from django.urls import path

from customers import views, views_panels

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("contact-ended/", views.contact_ended, name="contact_ended"),
    path("<uuid:public_id>/", views.customer_detail, name="detail"),
    path("<uuid:public_id>/follow-up/", views.customer_follow_up, name="follow_up"),
    path(
        "<uuid:public_id>/contacts/<uuid:contact_id>/left/",
        views.contact_left,
        name="contact_left",
    ),
    path("<uuid:public_id>/panels/<slug:key>/", views_panels.customer_panel, name="panel"),
]
