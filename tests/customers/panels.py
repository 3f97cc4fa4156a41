"""The customer 360 as a browser sees it once scrolled through: the page and each of its
lazy panels, fetched as htmx fetches them (customers.views_panels)."""

from __future__ import annotations

import re

from django.urls import reverse

HX = {"HX-Request": "true"}
_PLACEHOLDER = re.compile(r'<div id="panel-([\w-]+)"[^>]*?hx-get="([^"]+)" hx-trigger="revealed"')


def lazy_panels(html: str) -> dict[str, str]:
    """key → URL of every lazy panel placeholder on a page."""
    return {key: url.replace("&amp;", "&") for key, url in _PLACEHOLDER.findall(html)}


def panel_url(customer, key: str) -> str:
    return reverse("customers:panel", args=[customer.public_id, key])


def customer_360(client, customer, **params) -> str:
    """The customer page's HTML followed by every lazy panel's (each answered 200)."""
    page = client.get(reverse("customers:detail", args=[customer.public_id]), params)
    assert page.status_code == 200, page.status_code
    html = page.content.decode()
    parts = [html]
    for key, url in lazy_panels(html).items():
        response = client.get(url, headers=HX)
        assert response.status_code == 200, (key, response.status_code)
        parts.append(response.content.decode())
    return "\n".join(parts)
