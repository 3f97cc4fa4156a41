"""The effects' pages, included by service_feedback.urls (namespace service_feedback,
under /service/): the quality alerts and the review card's read receipt."""

from service_feedback import views_alerts, views_review

urlpatterns = [*views_alerts.urlpatterns, *views_review.urlpatterns]
