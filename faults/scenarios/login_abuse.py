"""Login abuse, behind a trusted proxy (BEHIND_HTTPS_PROXY=True, the client's address in
X-Forwarded-For as the proxy appends it) and without one (clients on their own loopback
addresses, 127.0.0.x, with a forged X-Forwarded-For that must be ignored).

Promises: a guesser who fails repeatedly is locked out (429/403) — and only that guesser:
the real user, from their own address, still logs in; a guesser forging X-Forwarded-For
cannot make the lock land on someone else; guesses spread over many addresses are slowed
(429 with Retry-After) once the per-username ceiling is reached; the real user still logs
in afterwards (waiting at most the Retry-After they are given)."""

from __future__ import annotations

import re
import time

import httpx


class Client:
    def __init__(self, base_url: str, *, ip: str, proxied: bool, forged: str | None = None):
        self.ip, self.proxied, self.forged = ip, proxied, forged
        self.user = "victim-proxy" if proxied else "victim-direct"
        transport = None if proxied else httpx.HTTPTransport(local_address=ip)
        self.http = httpx.Client(base_url=base_url, timeout=30, transport=transport)

    def _headers(self) -> dict[str, str]:
        if self.proxied:
            # The proxy appends the address it saw to whatever the client sent.
            xff = f"{self.forged}, {self.ip}" if self.forged else self.ip
            return {"X-Forwarded-For": xff, "X-Forwarded-Proto": "https"}
        return {"X-Forwarded-For": self.forged} if self.forged else {}

    def _origin(self) -> str:
        host = self.http.base_url.netloc.decode()
        return f"{'https' if self.proxied else 'http'}://{host}"

    def login(self, password: str) -> httpx.Response:
        page = self.http.get("/accounts/login/", headers=self._headers())
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        return self.http.post(
            "/accounts/login/",
            data={
                "csrfmiddlewaretoken": token.group(1) if token else "",
                "username": self.user,
                "password": password,
            },
            headers={**self._headers(), "Referer": self._origin() + "/accounts/login/"},
        )

    def close(self):
        self.http.close()


def _real_user_logs_in(new_client, password: str, max_wait: float = 90) -> dict:
    """The user tries (a fresh browser each time: a signed-in one would be redirected),
    and waits out a Retry-After of up to `max_wait` seconds in all (slowed is fine; a
    longer wait counts as locked out)."""
    started = time.monotonic()
    waits = 0
    retry = None
    while True:
        c = new_client()
        r = c.login(password)
        c.close()
        if r.status_code == 302:
            break
        retry = r.headers.get("Retry-After")
        left = max_wait - (time.monotonic() - started)
        if r.status_code == 429 and retry and retry.isdigit() and int(retry) <= left:
            waits += 1
            time.sleep(int(retry) + 0.5)
            continue
        break
    return {
        "status": r.status_code,
        "logged_in": r.status_code == 302,
        "waited_s": round(time.monotonic() - started, 1),
        "retry_after_waits": waits,
        "last_retry_after": retry,
    }


def _phase(stack, world, *, proxied: bool) -> dict:
    password = world["password"]
    stack.manage("axes_reset")
    extra = {"BEHIND_HTTPS_PROXY": "True"} if proxied else {}
    web = stack.web(**extra)
    if proxied:
        attacker_ip, victim_ip = "203.0.113.66", "198.51.100.7"
        spread = [f"192.0.2.{i}" for i in range(1, 61)]
    else:
        attacker_ip, victim_ip = "127.0.0.66", "127.0.0.7"
        spread = [f"127.0.1.{i}" for i in range(1, 61)]
    out: dict = {}
    # 1. One guesser, many wrong passwords.
    attacker = Client(stack.base_url, ip=attacker_ip, proxied=proxied)
    statuses = [attacker.login(f"wrong-{i}").status_code for i in range(10)]
    out["guesser_answers"] = statuses
    out["guesser_locked"] = any(s in (403, 429) for s in statuses)

    def victim():
        return Client(stack.base_url, ip=victim_ip, proxied=proxied)

    out["real_user_after_guesser"] = _real_user_logs_in(victim, password)
    # 2. A guesser forging X-Forwarded-For with the real user's address.
    forger = Client(
        stack.base_url,
        ip="203.0.113.99" if proxied else "127.0.0.99",
        proxied=proxied,
        forged=victim_ip,
    )
    out["forger_answers"] = [forger.login(f"forged-{i}").status_code for i in range(10)]
    out["real_user_after_forger"] = _real_user_logs_in(victim, password)
    # 3. Distributed guessing: 60 addresses, 2 guesses each.
    spread_answers: dict[str, int] = {}
    slowed = with_retry_after = 0
    for ip in spread:
        c = Client(stack.base_url, ip=ip, proxied=proxied)
        for i in range(2):
            r = c.login(f"spread-{ip}-{i}")
            spread_answers[str(r.status_code)] = spread_answers.get(str(r.status_code), 0) + 1
            if r.status_code == 429:
                slowed += 1
                with_retry_after += bool(r.headers.get("Retry-After"))
        c.close()
    out["distributed_guesses"] = 2 * len(spread)
    out["distributed_answers"] = spread_answers
    out["distributed_slowed_429"] = slowed
    out["distributed_429_with_retry_after"] = with_retry_after
    out["real_user_after_distributed"] = _real_user_logs_in(victim, password)
    for c in (attacker, forger):
        c.close()
    web.stop()
    stack.procs.remove(web)
    out["ok"] = (
        out["guesser_locked"]
        and out["real_user_after_guesser"]["logged_in"]
        and out["real_user_after_forger"]["logged_in"]
        and with_retry_after > 0
        and out["real_user_after_distributed"]["logged_in"]
    )
    return out


def run(stack, world) -> dict:
    proxy = _phase(stack, world, proxied=True)
    direct = _phase(stack, world, proxied=False)

    def line(p):
        return (
            f"guesser locked {p['guesser_locked']}, user in after guesser "
            f"{p['real_user_after_guesser']['logged_in']}/forger "
            f"{p['real_user_after_forger']['logged_in']}/spread "
            f"{p['real_user_after_distributed']['logged_in']}, spread slowed "
            f"{p['distributed_429_with_retry_after']}/{p['distributed_guesses']}"
        )

    return {
        "ok": proxy["ok"] and direct["ok"],
        "key": f"proxy: {line(proxy)}; direct: {line(direct)}",
        "behind_proxy": proxy,
        "direct": direct,
    }
