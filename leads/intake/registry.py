"""Business-registry verification of company names (F4), behind one small adapter.

Configured by REGISTRY_VERIFIER_URL; the service is asked `GET <url>?name=<company>` and
answers JSON `{"found": true|false, "name": "…", "status": "…"}`. Results are cached for a
week per company key. It runs in a task after the lead exists and never blocks intake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.cache import cache

from crm import normalize
from leads.intake.services import lead_record_registry_result
from leads.models import Lead, RegistryStatus

logger = logging.getLogger(__name__)
CACHE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str = ""


def verify_company(name: str) -> Verdict:
    key = "registry:" + normalize.company_key(name)
    cached = cache.get(key)
    if cached:
        return Verdict(*cached)
    timeout = httpx.Timeout(settings.REGISTRY_VERIFIER_TIMEOUT, connect=2.0)
    try:
        response = httpx.get(settings.REGISTRY_VERIFIER_URL, params={"name": name}, timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        logger.warning("registry check for %r failed: %s", name, exc)
        return Verdict(RegistryStatus.ERROR, f"{exc.__class__.__name__}: {exc}"[:300])
    if body.get("found"):
        verdict = Verdict(
            RegistryStatus.VERIFIED,
            " · ".join(str(body[k]) for k in ("name", "status") if body.get(k)),
        )
    else:
        verdict = Verdict(RegistryStatus.NOT_FOUND)
    cache.set(key, (verdict.status, verdict.detail), CACHE_SECONDS)
    return verdict


def lead_verify_company(*, lead_id: int) -> None:
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is None or not lead.company:
        return
    verdict = verify_company(lead.company)
    lead_record_registry_result(lead=lead, status=verdict.status, detail=verdict.detail)
