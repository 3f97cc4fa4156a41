"""Fence 3: every URL that takes an id answers 404 for another tenant's object.

The walk covers the whole URLconf, so views added later are checked without editing this
file; a pattern whose arguments it cannot build fails until registered in registry.py.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

from tests.isolation.registry import BUILDERS, EXEMPT, EXEMPT_ROUTES, MODEL_OBJECTS

ADMIN_OBJECT_URL = re.compile(
    r"^admin:(?P<app>\w+?)_(?P<model>[a-z0-9]+)_(change|delete|history|password_change)$"
)


def _walk(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(filter(None, [namespace, p.namespace])) or None
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            if p.name:
                key = f"{namespace}:{p.name}" if namespace else p.name
            else:
                key = route.lstrip("^")
            yield key, route


def _takes_arguments(route: str) -> bool:
    return "<" in route or "(?P" in route


def id_patterns() -> list[tuple[str, str]]:
    seen = {}
    for key, route in _walk(get_resolver().url_patterns):
        if _takes_arguments(route):
            seen.setdefault(key, route)
    return sorted(seen.items())


def _param(route: str) -> str:
    """The one object parameter of an admin object route (object_id, or id for passwords)."""
    return re.findall(r"<(?:\w+:)?(\w+)>", route)[-1]


def _admin_model(key: str):
    match = ADMIN_OBJECT_URL.match(key)
    if not match:
        return None
    for model in admin.site._registry:
        if (model._meta.app_label, model._meta.model_name) == (match["app"], match["model"]):
            return model
    return None


def _is_tenant_scoped(model) -> bool:
    return any(f.name == "tenant" for f in model._meta.get_fields())


def test_the_walk_finds_the_id_urls():
    keys = {k for k, _ in id_patterns()}
    assert "tenant_switch" in keys
    assert "admin:crm_auditevent_change" in keys


def test_registry_has_no_stale_entries():
    keys = {k for k, _ in id_patterns()}
    stale = (set(BUILDERS) | set(EXEMPT)) - keys
    assert not stale, f"registered but no such URL any more: {sorted(stale)}"


def _fetch(client, url):
    response = client.get(url)
    if response.status_code == 405:  # POST-only views check access first too
        response = client.post(url)
    return response


@pytest.mark.parametrize(("key", "route"), id_patterns(), ids=[k for k, _ in id_patterns()])
def test_another_tenants_id_is_not_found(key, route, world, login):
    if key in EXEMPT:
        pytest.skip(EXEMPT[key])
    for pattern, reason in EXEMPT_ROUTES:
        if re.match(pattern, route):
            pytest.skip(reason)
    model = _admin_model(key)
    if model is not None:
        if not _is_tenant_scoped(model):
            # Platform models (users, tenants, schedules): a tenant admin gets no access.
            client = login(world.a.admin)
            kwargs = {_param(route): "1"}
            assert _fetch(client, _reverse(key, kwargs)).status_code == 403, key
            return
        if model not in MODEL_OBJECTS:
            pytest.fail(f"{key}: register how to build a {model.__name__} in MODEL_OBJECTS")

        def build(w, s):
            return {_param(route): str(MODEL_OBJECTS[model](w, s).pk)}
    elif key in BUILDERS:
        build = BUILDERS[key]
    else:
        pytest.fail(f"{key} ({route}) takes an id: register it in tests/isolation/registry.py")

    client = login(world.a.admin)
    foreign = _fetch(client, _reverse(key, build(world, "b")))
    if foreign.status_code == 403:
        # Allowed only when the page is forbidden to this role whatever the id: then the
        # answer reveals nothing about the other tenant.
        own = _fetch(client, _reverse(key, build(world, "a")))
        assert own.status_code == 403, f"{key}: 403 for a foreign id but {own.status_code} for own"
    else:
        assert foreign.status_code == 404, f"{key}: {foreign.status_code} for another tenant's id"


def _reverse(key, kwargs):
    from django.urls import reverse

    return reverse(key, kwargs=kwargs)
