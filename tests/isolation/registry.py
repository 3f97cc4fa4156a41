"""How to build each id-taking URL's arguments from one tenant's objects.

Every URL pattern that takes a parameter must appear here: in BUILDERS (the walker then
proves another tenant's id answers 404), in MODEL_OBJECTS (for the admin pages of a
tenant-owned model), or in EXEMPT with the reason it carries no tenant object. A new view
that is in none of them fails tests/isolation/test_urls.py until it is registered.

A builder takes (world, side) — side is "a" (the requester's own tenant) or "b" (the other
tenant) — and returns the URL kwargs for that side's object.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.contenttypes.models import ContentType

from crm.models import AuditEvent, Membership

BUILDERS: dict[str, Callable] = {
    "tenant_switch": lambda w, s: {"slug": w.side(s).tenant.slug},
    "admin:view_on_site": lambda w, s: {
        "content_type_id": ContentType.objects.get_for_model(AuditEvent).pk,
        "object_id": str(w.side(s).audit_event.pk),
    },
}

# Admin change/delete/history pages of tenant-scoped models: which object to open.
MODEL_OBJECTS: dict[type, Callable] = {
    AuditEvent: lambda w, s: w.side(s).audit_event,
    Membership: lambda w, s: w.side(s).rep,
}

EXEMPT: dict[str, str] = {
    "admin:app_list": "an app label, not an object",
    "admin/(?P<url>.*)$": "the admin's catch-all: redirects or 404s, no object",
}

# Unnamed patterns that recur per model, matched on the route.
EXEMPT_ROUTES: list[tuple[str, str]] = [
    (r"^admin/\w+/\w+/<path:object_id>/$", "unnamed redirect to the change page, which is walked"),
]
