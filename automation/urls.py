from django.urls import path

from automation import views

app_name = "automation"

urlpatterns = [
    path("tasks/<uuid:public_id>/done/", views.task_done_view, name="task_done"),
]
