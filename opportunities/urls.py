"""Opportunities over HTTP: the pipeline (kanban, table, moves), the opportunity's page
and its evidence, the forecast. Each module holds its own patterns."""

from opportunities.views_forecast import urlpatterns as forecast
from opportunities.views_page import urlpatterns as page
from opportunities.views_pipeline import urlpatterns as pipeline

app_name = "opportunities"

urlpatterns = [*pipeline, *forecast, *page]
