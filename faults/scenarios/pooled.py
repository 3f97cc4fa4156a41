"""10,000 interleaved requests of two tenants' users and anonymous visitors over one
pooled connection (gunicorn with 1 worker and 1 thread, CONN_MAX_AGE=3600, so every
request reuses the same PostgreSQL session).

Promises: 0 foreign rows (each tenant's list, CSV export and lead pages show only its
own marker; the other tenant's lead ids answer 404; anonymous pages show neither), and
at each request start the connection carries no tenant: app.tenant_id and
app.all_tenants are empty (checked by faults/settings.py, a receiver of request_started
that only this suite installs)."""

from __future__ import annotations

import json
import random
import re
import time

import httpx

from faults.common import lead_body, percentile, signed_headers, sized
from faults.stack import VAR

MARK = {"faults-a": "MKA7Q", "faults-b": "MKB9Z"}


def _login(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
    )
    if r.status_code != 302:
        raise RuntimeError(f"log-in of {username} answered {r.status_code}")
    return client


def run(stack, world) -> dict:
    n = sized(10000, 800)
    checkout_log = VAR / "checkout.log"
    checkout_log.unlink(missing_ok=True)
    chans, ids = {}, {}
    for slug in MARK:
        chans[slug] = stack.dj("channel", tenant=slug, type="web_form", name=f"pooled {slug}")
        stack.dj("markers", tenant=slug, marker=MARK[slug], n=25, channel_id=chans[slug]["id"])
        ids[slug] = [
            str(r[0])
            for r in stack.sql(
                "SELECT public_id FROM leads_lead WHERE channel_id = %s", [chans[slug]["id"]]
            )
        ]
    stack.web(
        workers=1,
        threads=1,
        DJANGO_SETTINGS_MODULE="faults.settings",
        CONN_MAX_AGE="3600",
        FAULTS_CHECKOUT_LOG=str(checkout_log),
    )
    users = {
        slug: _login(stack.base_url, f"{slug[-1]}-manager", world["password"]) for slug in MARK
    }
    anon = httpx.Client(base_url=stack.base_url, timeout=30)
    rng = random.Random(11)
    other = {"faults-a": "faults-b", "faults-b": "faults-a"}
    kinds: dict[str, int] = {}
    foreign = 0
    own_missing = 0
    unexpected: list[dict] = []
    ms: list[float] = []
    started = time.monotonic()
    for i in range(n):
        who = rng.choice(["faults-a", "faults-b", "anon"])
        if who == "anon":
            kind = rng.choice(["form", "webhook", "login", "healthz"])
            slug = rng.choice(list(MARK))
            t0 = time.monotonic()
            if kind == "form":
                r, want = anon.get(f"/f/{chans[slug]['key']}/"), (200,)
            elif kind == "webhook":
                body = lead_body(i, "pool")
                r = anon.post(
                    f"/hooks/{chans[slug]['key']}/",
                    content=body,
                    headers=signed_headers(chans[slug]["secret"], body, f"pool-{i}"),
                )
                want = (202, 200)
            elif kind == "login":
                r, want = anon.get("/accounts/login/"), (200,)
            else:
                r, want = anon.get("/healthz"), (200, 503)
            forbidden = list(MARK.values())
            own = None
        else:
            client, slug = users[who], who
            kind = rng.choice(["list", "csv", "detail", "foreign_detail", "home"])
            t0 = time.monotonic()
            if kind == "list":
                r, want, own = client.get("/leads/"), (200,), MARK[who]
            elif kind == "csv":
                r, want, own = client.get("/leads/", params={"_export": "csv"}), (200,), MARK[who]
            elif kind == "detail":
                r, want, own = client.get(f"/leads/{rng.choice(ids[who])}/"), (200,), MARK[who]
            elif kind == "foreign_detail":
                r, want, own = client.get(f"/leads/{rng.choice(ids[other[who]])}/"), (404,), None
            else:
                r, want, own = client.get("/"), (200,), None
            forbidden = [MARK[other[who]]]
        ms.append((time.monotonic() - t0) * 1000)
        label = f"{who}:{kind}"
        kinds[label] = kinds.get(label, 0) + 1
        text = r.text
        hits = sum(text.count(m) for m in forbidden)
        foreign += hits
        if own and own not in text:
            own_missing += 1
        if r.status_code not in want or hits:
            if len(unexpected) < 5:
                unexpected.append({"req": label, "status": r.status_code, "foreign": hits})
            if r.status_code not in want:
                kinds["unexpected_status"] = kinds.get("unexpected_status", 0) + 1
    duration = time.monotonic() - started
    for c in (*users.values(), anon):
        c.close()

    lines = [json.loads(x) for x in checkout_log.read_text().splitlines() if x.strip()]
    dirty = [x for x in lines if x["tenant"] not in (None, "") or x["all"] not in (None, "")]
    in_tx = sum(1 for x in lines if x["in_tx"])
    pids = {x["pid"] for x in lines}
    bad_status = kinds.get("unexpected_status", 0)
    ok = foreign == 0 and not dirty and len(lines) >= n and own_missing == 0 and bad_status == 0
    return {
        "ok": ok,
        "key": (
            f"{n} requests over {len(pids)} connection(s): {foreign} foreign rows, "
            f"{len(dirty)}/{len(lines)} checkouts with a tenant set, {bad_status} unexpected status"
        ),
        "requests": n,
        "by_kind": dict(sorted(kinds.items())),
        "foreign_rows": foreign,
        "own_rows_missing": own_missing,
        "unexpected": unexpected,
        "checkouts": len(lines),
        "checkouts_with_tenant_set": len(dirty),
        "checkouts_inside_a_transaction": in_tx,
        "dirty_examples": dirty[:3],
        "backend_pids": len(pids),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "requests_per_s": round(n / duration, 1),
    }
