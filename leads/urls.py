from django.urls import path

from leads import imports, views

app_name = "leads"

urlpatterns = [
    path("", views.lead_list, name="list"),
    path("<uuid:public_id>/", views.lead_detail, name="detail"),
    path("import/", imports.import_upload, name="import"),
    path("import/<uuid:public_id>/", imports.import_batch, name="import_batch"),
]
