app_name = "service_feedback"

urlpatterns: list = []
