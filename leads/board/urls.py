"""The daily board (F15, F19), included from crm/urls.py at `board/`."""

from django.urls import path

from leads.board import views as board_views

app_name = "board"

urlpatterns = [
    path("", board_views.board, name="board"),
    path("close/", board_views.day_close_view, name="close"),
    path("summaries/", board_views.summaries, name="summaries"),
]
