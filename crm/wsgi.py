import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
application = get_wsgi_application()


def _freeze_start_up() -> None:
    """Load the URLconf (and so every view module), then move all objects alive now into
    the collector's permanent generation: the cyclic garbage collector stops walking them
    on every full collection, which made a page's p95 about twice its median
    (bench/README.md, "Board and lead-quality report": 112 → 67 ms on the board)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 — imports the views
    gc.collect()
    gc.freeze()


_freeze_start_up()
