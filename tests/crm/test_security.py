"""Security headers (crm/security.py, settings "Security"): a Content-Security-Policy with
a fresh nonce that every script on the page carries, no inline style or event handler the
policy would refuse, `Cache-Control: private, no-store` for signed-in users only, and a
`check --deploy` without warnings under the documented production settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

from crm.tenancy import tenant_context
from leads.models import InboundEvent
from tests.leads.factories import make_channel, make_lead, post_signed

ROOT = Path(__file__).resolve().parents[2]


class _Inline(HTMLParser):
    """Collects what a CSP cares about in a page: scripts and style blocks with their
    nonces, style attributes and inline event handlers."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.styles: list[dict] = []
        self.refused: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
        elif tag == "style":
            self.styles.append(attributes)
        for name, _value in attrs:
            if name == "style" or name.startswith("on"):
                self.refused.append(f"<{tag} {name}=…>")


def _nonce(response) -> str:
    policy = response["Content-Security-Policy"]
    nonces = re.findall(r"'nonce-([^']+)'", policy)
    assert nonces and len(set(nonces)) == 1, policy
    return nonces[0]


def _directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def _assert_page_obeys_its_policy(response, *, ours=True):
    """Our templates put the nonce on every script; the Django admin's own templates load
    theirs from 'self' without one (and have no inline script)."""
    assert response.status_code == 200, response
    nonce = _nonce(response)
    page = _Inline()
    page.feed(response.content.decode())
    for script in page.scripts:
        if script.get("type") == "application/json":
            continue  # data (json_script), never executed
        if ours or "src" not in script:
            assert script.get("nonce") == nonce, script
        else:
            assert re.match(r"/[^/]", script["src"]), script
    for style in page.styles:
        assert style.get("nonce") == nonce, style
    assert page.refused == []
    return page


@pytest.fixture
def pages(world):
    tenant = world.a.tenant
    lead = make_lead(tenant, owner=world.a.rep)
    return [
        "/dashboard/",
        "/board/",
        "/leads/",
        f"/leads/{lead.public_id}/",
        "/customers/",
        "/reports/lead-quality/",
        "/notifications/",
        "/admin/",
        "/admin/leads/tag/",
        "/admin/leads/channel/",
    ]


def test_every_signed_in_page_has_a_policy_its_scripts_carry_the_nonce_of(login, world, pages):
    client = login(world.a.admin)
    seen = set()
    for url in pages:
        response = client.get(url)
        page = _assert_page_obeys_its_policy(response, ours=not url.startswith("/admin/"))
        assert page.scripts, url
        directives = _directives(response)
        assert directives["default-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'", f"'nonce-{_nonce(response)}'"]
        assert directives["style-src"] == ["'self'", f"'nonce-{_nonce(response)}'"]
        assert directives["img-src"] == ["'self'", "data:"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["form-action"] == ["'self'"]
        assert directives["base-uri"] == ["'self'"]
        assert directives["object-src"] == ["'none'"]
        seen.add(_nonce(response))
    assert len(seen) == len(pages)  # a fresh nonce per request


def test_the_login_page_and_the_hosted_form_obey_the_policy(client, world):
    _assert_page_obeys_its_policy(client.get("/accounts/login/"))
    channel = make_channel(world.a.tenant)
    response = client.get(f"/f/{channel.key}/")
    _assert_page_obeys_its_policy(response)
    # Customers embed the form in their own sites: it may be framed, by any site unless
    # CSP_EMBED_FRAME_ANCESTORS says otherwise; everything else may not.
    assert _directives(response)["frame-ancestors"] == ["*"]
    assert "X-Frame-Options" not in response
    assert _directives(client.get("/accounts/login/"))["frame-ancestors"] == ["'none'"]


def test_the_framing_origins_of_the_hosted_form_are_a_setting(client, world, settings):
    settings.CSP_EMBED_FRAME_ANCESTORS = "https://www.example.com https://*.example.cn"
    channel = make_channel(world.a.tenant)
    response = client.get(f"/f/{channel.key}/")
    assert _directives(response)["frame-ancestors"] == [
        "https://www.example.com",
        "https://*.example.cn",
    ]


def test_report_only_sends_the_same_policy_under_the_report_only_header(client, settings):
    settings.CSP_REPORT_ONLY = True
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" not in response
    assert "'nonce-" in response["Content-Security-Policy-Report-Only"]


def test_signed_in_pages_are_private_and_never_stored(login, world, pages):
    client = login(world.a.rep)
    for url in ["/", "/board/", "/leads/", "/customers/", "/notifications/bell/"]:
        cache_control = client.get(url)["Cache-Control"]
        directives = {d.strip() for d in cache_control.split(",")}
        assert {"private", "no-store"} <= directives, (url, cache_control)
        assert "public" not in directives


def test_anonymous_answers_keep_their_own_cache_headers(client, world):
    channel = make_channel(world.a.tenant)
    hook = post_signed(client, channel, {"phone": "13957123481", "company": "宁波海天"})
    assert hook.status_code in (200, 202), hook.content
    assert "Cache-Control" not in hook
    assert "Content-Security-Policy" in hook
    qr = client.get(f"/f/{channel.key}/qr.png")
    assert "public" in qr["Cache-Control"]


def test_static_files_carry_neither_the_policy_nor_no_store(live_server):
    import urllib.request

    with urllib.request.urlopen(f"{live_server.url}/static/crm/app.css") as response:
        assert response.status == 200
        assert "Content-Security-Policy" not in response.headers
        assert "no-store" not in (response.headers.get("Cache-Control") or "")


def test_a_static_file_fetched_by_a_signed_in_user_is_not_made_private(login, world):
    # WhiteNoise answers before the session is read (it comes first in MIDDLEWARE).
    middleware = settings.MIDDLEWARE
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") < min(
        middleware.index("crm.security.ContentSecurityPolicyMiddleware"),
        middleware.index("crm.security.PrivateCacheMiddleware"),
        middleware.index("django.contrib.sessions.middleware.SessionMiddleware"),
    )


# The production settings docs/operations.md and .env.example document (HTTPS behind a
# proxy, HSTS with subdomains and preload).
PRODUCTION_ENV = {
    "DEBUG": "False",
    "SECRET_KEY": "Qm7v-production-like-Zx2kP9wL4tR8nB3yH6jD1sF5gC0aE7uV2iO9pK4mN8",
    "ALLOWED_HOSTS": "crm.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://crm.example.com",
    "BEHIND_HTTPS_PROXY": "True",
    "SECURE_SSL_REDIRECT": "True",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
    "SECURE_HSTS_PRELOAD": "True",
    "SESSION_COOKIE_SECURE": "True",
    "CSRF_COOKIE_SECURE": "True",
}


def _check_deploy(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DJANGO_ALLOW_ASYNC_UNSAFE"  # the suite's, for playwright
        and not key.startswith("SECURE_")
        and key not in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_silent_with_the_documented_production_settings():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr and "WARNING" not in result.stdout
    assert "System check identified no issues" in result.stdout


def test_debug_off_defaults_to_https_hsts_and_secure_cookies():
    """Unset, the variables take their production values when DEBUG is off: only the
    preload list (an opt-in) is left to the operator."""
    env = {k: v for k, v in PRODUCTION_ENV.items() if not k.startswith("SECURE_")}
    env.pop("SESSION_COOKIE_SECURE")
    env.pop("CSRF_COOKIE_SECURE")
    result = _check_deploy(env)
    output = result.stdout + result.stderr
    assert "security.W021" in output  # SECURE_HSTS_PRELOAD, off by default
    for check in ("W004", "W005", "W008", "W012", "W016"):
        assert f"security.{check}" not in output, output


class _StalledInput:
    """wsgi.input of a client that went quiet: the web server's read timeout fires."""

    def read(self, *args):
        raise TimeoutError("timed out")

    readline = read


def test_a_webhook_body_that_stops_arriving_is_a_408_json_error(client, world):
    channel = make_channel(world.a.tenant)
    response = client.post(
        f"/hooks/{channel.key}/",
        data=b"x" * 1000,
        content_type="application/json",
        **{"wsgi.input": _StalledInput()},
    )
    assert response.status_code == 408
    assert response.json() == {"error": "the request body did not arrive in time"}
    with tenant_context(world.a.tenant):
        assert not InboundEvent.objects.exists()


def test_a_form_body_that_stops_arriving_is_not_a_500(client, world):
    channel = make_channel(world.a.tenant)
    response = client.post(
        f"/f/{channel.key}/",
        data=b"x" * 1000,
        content_type="application/x-www-form-urlencoded",
        **{"wsgi.input": _StalledInput()},
    )
    assert response.status_code == 408, response.status_code
    assert response["Content-Type"].startswith("text/plain")
