"""(being built: the opportunity's page)"""

from django.http import Http404
from django.urls import path


def _todo(request, public_id):
    raise Http404


urlpatterns: list = [
    path("<uuid:public_id>/", _todo, name="detail"),
    path("<uuid:public_id>/edit/", _todo, name="edit"),
]
