from service_feedback import urls_effects

app_name = "service_feedback"

urlpatterns: list = [*urls_effects.urlpatterns]
