"""What the scenarios share: signed webhooks, paced bursts over HTTP, accounting in SQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from faults.stack import QUICK, FaultStack, log

__all__ = ["QUICK", "FaultStack", "log"]


def sized(full, quick):
    return quick if QUICK else full


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1], 1)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


_rng = random.Random(20261202)
_used_phones: set[str] = set()


def phone() -> str:
    """A realistic, unique mainland mobile number (no runs the intake takes for a placeholder)."""
    while True:
        digits = "139" + "".join(_rng.choice("123456789") for _ in range(8))
        if digits not in _used_phones and not re.search(r"(\d)\1\1", digits):
            _used_phones.add(digits)
            return digits


def lead_body(i: int, tag: str) -> bytes:
    return json.dumps(
        {
            "company": f"{tag}测试{i:05d}号精密机械有限公司",
            "contact_name": "王工",
            "phone": phone(),
            "message": f"{tag} #{i}",
        },
        ensure_ascii=False,
    ).encode()


def signed_headers(secret: str, body: bytes, key: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-CRM-Timestamp": ts,
        "X-CRM-Signature": sign(secret, ts, body),
    }
    if key:
        headers["Idempotency-Key"] = key
    return headers


@dataclass
class Answer:
    i: int
    key: str
    status: int  # 0: no answer (connection error)
    ms: float
    at: float
    retry_after: str | None = None
    content_type: str = ""
    body: str = ""
    error: str = ""


@dataclass
class Burst:
    """Send `n` requests at `rate` per second from `threads` threads; `make(i)` builds
    (method, url, kwargs, key). Answers are kept in order of i."""

    n: int
    rate: float
    make: object
    threads: int = 8
    answers: list[Answer] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _one(self, client: httpx.Client, i: int) -> Answer:
        due = self.started + i / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        method, url, kwargs, key = self.make(i)
        t0 = time.monotonic()
        try:
            r = client.request(method, url, **kwargs)
            ans = Answer(
                i,
                key,
                r.status_code,
                (time.monotonic() - t0) * 1000,
                time.time(),
                r.headers.get("Retry-After"),
                r.headers.get("Content-Type", ""),
                r.text[:300],
            )
        except httpx.HTTPError as exc:
            ans = Answer(
                i, key, 0, (time.monotonic() - t0) * 1000, time.time(), error=repr(exc)[:200]
            )
        return ans

    def run(self) -> Burst:
        self.started = time.monotonic()
        with (
            httpx.Client(timeout=httpx.Timeout(60.0)) as client,
            ThreadPoolExecutor(self.threads) as pool,
        ):
            self.answers = list(pool.map(lambda i: self._one(client, i), range(self.n)))
        self.ended = time.monotonic()
        return self

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.answers:
            counts[str(a.status)] = counts.get(str(a.status), 0) + 1
        return dict(sorted(counts.items()))

    def latency(self) -> dict[str, float | None]:
        ms = [a.ms for a in self.answers]
        return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)}


def webhook_maker(base_url: str, ch: dict, tag: str, *, channels: list[dict] | None = None):
    """make(i) for Burst: a signed lead on `ch` (or round-robin over `channels`) with the
    Idempotency-Key `<tag>-<i>`."""
    chans = channels or [ch]

    def make(i: int):
        c = chans[i % len(chans)]
        body = lead_body(i, tag)
        key = f"{tag}-{i:05d}"
        return (
            "POST",
            f"{base_url}/hooks/{c['key']}/",
            {"content": body, "headers": signed_headers(c["secret"], body, key)},
            key,
        )

    return make


def account(stack: FaultStack, channel_ids: list[int], keys: list[str]) -> dict:
    """For acknowledged keys: how many events each has, their status, and the leads."""
    rows = stack.sql(
        "SELECT idempotency_key, status, lead_id, received_at, processed_at "
        "FROM leads_inboundevent WHERE channel_id = ANY(%s) AND idempotency_key = ANY(%s)",
        [channel_ids, keys],
    )
    by_key: dict[str, list] = {}
    for row in rows:
        by_key.setdefault(row[0], []).append(row)
    missing = [k for k in keys if k not in by_key]
    doubled = [k for k, v in by_key.items() if len(v) > 1]
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row[1]] = statuses.get(row[1], 0) + 1
    lead_ids = [row[2] for row in rows if row[2] is not None]
    leads = stack.sql(
        "SELECT count(*), count(DISTINCT phone) FROM leads_lead WHERE channel_id = ANY(%s)",
        [channel_ids],
    )[0]
    processed_at = [row[4] for row in rows if row[4] is not None]
    return {
        "events": len(rows),
        "missing": len(missing),
        "missing_keys": missing[:5],
        "events_doubled": len(doubled),
        "statuses": statuses,
        "leads": leads[0],
        "leads_distinct_phones": leads[1],
        "leads_of_events_distinct": len(set(lead_ids)),
        "lead_ids_shared": len(lead_ids) - len(set(lead_ids)),
        "last_processed_at": max(processed_at) if processed_at else None,
    }


def wait_processed(stack: FaultStack, channel_ids: list[int], bound: float) -> tuple[float, int]:
    """Wait until no event of the channels is `received`; (seconds waited, still left)."""
    started = time.monotonic()
    left = -1
    while time.monotonic() - started < bound:
        left = stack.sql(
            "SELECT count(*) FROM leads_inboundevent WHERE channel_id = ANY(%s) "
            "AND status = 'received'",
            [channel_ids],
        )[0][0]
        if left == 0:
            break
        time.sleep(2)
    return round(time.monotonic() - started, 1), left
