from django.urls import path

from leads import followups, views
from leads.assignment import views as assignment_views
from leads.intake import imports

app_name = "leads"

urlpatterns = [
    path("", views.lead_list, name="list"),
    path("<uuid:public_id>/", views.lead_detail, name="detail"),
    path("<uuid:public_id>/reassign/", assignment_views.lead_reassign_view, name="reassign"),
    path("<uuid:public_id>/pool/", assignment_views.lead_pool_view, name="pool"),
    path("<uuid:public_id>/touch/", assignment_views.lead_touch_view, name="touch"),
    path("<uuid:public_id>/verify/", followups.lead_verify_view, name="verify"),
    path("<uuid:public_id>/follow-up/", followups.lead_follow_up_view, name="follow_up"),
    path("why-not/", assignment_views.why_not, name="why_not"),
    path("me/", assignment_views.my_profile, name="my_profile"),
    path("me/training/ack/", assignment_views.training_ack, name="training_ack"),
    path("import/", imports.import_upload, name="import"),
    path("import/<uuid:public_id>/", imports.import_batch, name="import_batch"),
]
