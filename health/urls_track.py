"""Tracking's URLs, included from crm/urls.py at the site's root without a namespace: the
public endpoints (`track`, `tracked_link`, `tracked_pixel`: health.views_track) and the
customer page's form that sends a tracked link (`health_link_create`)."""

from health import views_links, views_track

urlpatterns = [*views_track.urlpatterns, *views_links.urlpatterns]
