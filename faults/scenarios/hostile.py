"""Hypothesis-driven hostile webhooks and WeCom callbacks over HTTP against gunicorn.

Promises: 0 × 5xx; a webhook 4xx carries a JSON body; a signed (authenticated) body is
either accepted or refused with 400/422 and stored once, as an event, failed where it
cannot be read; nothing is stored from unauthenticated input (malformed or missing
signature headers, wrong signatures, forged WeCom callbacks); 100 % of valid deliveries
(signed leads, WeCom contact-added events) accepted and made into leads; a correctly
signed chunked request is accepted or answered 411."""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import time

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults.common import lead_body, signed_headers, sized, wait_processed

_keys = itertools.count()

HOSTILE_VALUES = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"\\udfff tail"',
    '"\\ud83d"',
    "9" * 5000,
    "-" + "1" * 4301,
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "true",
    "null",
    '""',
    '{"$ref": "x"}',
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec=None, exclude_categories=())),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def hostile_json(draw) -> bytes:
    field = draw(st.sampled_from(["company", "phone", "message", "industry", "company_size", "x"]))
    value = draw(st.sampled_from(HOSTILE_VALUES))
    text = f'{{"phone": "13957123481", "{field}": {value}}}'
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-32", "gb18030", "latin-1"]))
    try:
        return text.encode(encoding, errors="surrogatepass")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


signed_bodies = st.one_of(
    hostile_json(),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=2000),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)

header_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789", min_size=1, max_size=600),
    st.integers(min_value=20, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(
        ["", " ", "-1", "1e9", "0x10", "１７６０", "nan", "sha256=", "sha256=" + "0" * 64]
    ),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


def _header_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")


def raw_post(port: int, path: str, headers: list[tuple[bytes, bytes]], body: bytes):
    """POST with header bytes exactly as given (an HTTP client library refuses to send
    control or non-ASCII bytes, a hostile sender does not): (status, body); status 0 when
    the server closed the connection without an answer."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    for name, value in headers:
        head += name + b": " + value + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/"):
        return 0, data
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1]


class Family:
    """One hypothesis family: counts answers, keeps failures and the shrunk example."""

    def __init__(self, name: str):
        self.name = name
        self.answers: dict[str, int] = {}
        self.failures = 0
        self.examples: list[dict] = []
        self.falsifying: str | None = None
        self.sent = 0

    def note(self, status: int) -> None:
        self.sent += 1
        self.answers[str(status)] = self.answers.get(str(status), 0) + 1

    def fail(self, what: str, **detail) -> None:
        self.failures += 1
        if len(self.examples) < 3:
            self.examples.append({"what": what, **detail})
        raise AssertionError(what)

    def run(self, test) -> None:
        try:
            test()
        except Exception as exc:
            self.falsifying = f"{exc.__class__.__name__}: {str(exc)[:300]}"

    def figures(self) -> dict:
        return {
            "sent": self.sent,
            "answers": dict(sorted(self.answers.items())),
            "failures": self.failures,
            "falsifying": self.falsifying,
            "examples": self.examples,
        }


def _is_json(r: httpx.Response) -> bool:
    try:
        r.json()
    except ValueError:
        return False
    return r.headers.get("Content-Type", "").startswith("application/json")


def wecom_sig(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 — WeCom's spec


def wecom_event(external: str, create_time: int) -> str:
    return (
        "<xml><ToUserName><![CDATA[ww5f3a9c21d07e4b18]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
        f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
        "<State><![CDATA[expo-2026-ningbo]]></State></xml>"
    )


def run(stack, world) -> dict:
    examples = sized(300, 40)
    valid_n = sized(200, 30)
    ha = stack.dj("channel", tenant="faults-a", name="hostile signed")
    hu = stack.dj("channel", tenant="faults-a", name="hostile unsigned")
    hv = stack.dj("channel", tenant="faults-b", name="hostile valid")
    wu = stack.dj("channel", tenant="faults-a", type="wecom", name="wecom unsigned", wecom=True)
    wv = stack.dj("channel", tenant="faults-b", type="wecom", name="wecom valid", wecom=True)
    stack.web()
    stack.worker()
    stack.beat()
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    cfg = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )

    # A. Signed hostile bodies: never 5xx; 4xx is JSON; 2xx / 400 / 422 stored once.
    signed = Family("signed_bodies")
    signed_keys: list[str] = []

    @cfg
    @given(body=signed_bodies)
    def a(body: bytes):
        key = f"h-{next(_keys)}"
        r = client.post(
            f"/hooks/{ha['key']}/", content=body, headers=signed_headers(ha["secret"], body, key)
        )
        signed.note(r.status_code)
        if r.status_code >= 500:
            signed.fail("5xx", status=r.status_code, body=body[:200].decode("utf-8", "replace"))
        if r.status_code >= 400 and not _is_json(r):
            signed.fail("4xx without a JSON body", status=r.status_code, answer=r.text[:120])
        if r.status_code in (200, 202, 400, 422):
            signed_keys.append(key)

    signed.run(a)

    # B. Unauthenticated webhooks: malformed / missing / wrong signature headers.
    unsigned = Family("unauthenticated_webhooks")

    @cfg
    @given(
        ts=st.one_of(st.just("NOW"), st.just("NOW"), header_text),
        sig=header_text,
        body=st.binary(max_size=300),
        keep_ts=st.booleans(),
    )
    def b(ts: str, sig: str, body: bytes, keep_ts: bool):
        # "NOW": a current timestamp, so that the signature itself gets checked.
        ts = str(int(time.time())) if ts == "NOW" else ts
        headers = [(b"Content-Type", b"application/json")]
        if keep_ts:
            headers.append((b"X-CRM-Timestamp", _header_bytes(ts)))
        headers.append((b"X-CRM-Signature", _header_bytes(sig)))
        status, answer = raw_post(stack.port, f"/hooks/{hu['key']}/", headers, body)
        unsigned.note(status)
        if status == 0:
            unsigned.fail("no answer", ts=ts[:60], sig=sig[:60])
        if status >= 500:
            unsigned.fail("5xx", status=status, ts=ts[:60], sig=sig[:60])
        if status < 400:
            unsigned.fail("accepted without a valid signature", status=status)
        if status == 401:  # the product's answer (gunicorn's own refusals are 400)
            try:
                json.loads(answer)
            except ValueError:
                unsigned.fail("401 without a JSON body", answer=answer[:80].decode("latin-1"))

    unsigned.run(b)

    # C. Forged WeCom callbacks (no valid msg_signature): GET verification and POSTs.
    forged = Family("forged_wecom")
    xml_bodies = st.one_of(
        st.binary(max_size=400),
        st.text(max_size=60).map(
            lambda t: f"<xml><Encrypt><![CDATA[{t}]]></Encrypt></xml>".encode(
                "utf-8", "surrogatepass"
            )
        ),
        st.just(
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;">]>'
            b"<xml><Encrypt>&b;</Encrypt></xml>"
        ),
        st.just(b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>"),
    )

    @cfg
    @given(
        sig=st.text(max_size=50),
        ts=header_text,
        nonce=st.text(max_size=20),
        body=xml_bodies,
        verify=st.booleans(),
    )
    def c(sig: str, ts: str, nonce: str, body: bytes, verify: bool):
        params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
        if verify:
            params["echostr"] = body.decode("latin-1")[:100]
            r = client.get(f"/hooks/{wu['key']}/", params=params)
        else:
            r = client.post(f"/hooks/{wu['key']}/", params=params, content=body)
        forged.note(r.status_code)
        if r.status_code >= 500 and not (r.status_code == 503 and "settings" in r.text):
            forged.fail("5xx", status=r.status_code, answer=r.text[:120])
        if r.status_code < 300:
            forged.fail("forged callback accepted", status=r.status_code, answer=r.text[:80])

    forged.run(c)
    client.close()

    # D. Valid deliveries: signed leads and WeCom contact-added events, all accepted.
    valid_hook = Family("valid_webhooks")
    with httpx.Client(base_url=stack.base_url, timeout=30) as vc:
        for i in range(valid_n):
            body = lead_body(i, "hv")
            r = vc.post(
                f"/hooks/{hv['key']}/",
                content=body,
                headers=signed_headers(hv["secret"], body, f"hv-{i}"),
            )
            valid_hook.note(r.status_code)
        now = int(time.time())
        inner = [wecom_event(f"wmFAULTS{i:05d}", now + i) for i in range(valid_n)]
        encrypted = stack.dj("wecom_encrypt", msgs=inner)["encrypted"]
        valid_wecom = Family("valid_wecom")
        for i, enc in enumerate(encrypted):
            ts, nonce = str(int(time.time())), f"n{i}x"
            body = (
                "<xml><ToUserName><![CDATA[ww5f3a9c21d07e4b18]]></ToUserName>"
                f"<Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
            ).encode()
            params = {
                "msg_signature": wecom_sig(wv["token"], ts, nonce, enc),
                "timestamp": ts,
                "nonce": nonce,
            }
            r = vc.post(f"/hooks/{wv['key']}/", params=params, content=body)
            valid_wecom.note(r.status_code)

        # E. A correctly signed chunked request (no Content-Length): accepted or 411.
        body = lead_body(0, "chunked")

        def chunks():
            yield body[:10]
            yield body[10:]

        r = vc.post(
            f"/hooks/{hv['key']}/",
            content=chunks(),
            headers=signed_headers(hv["secret"], body, "hv-chunked"),
        )
        chunked_status = r.status_code

    waited, left = wait_processed(stack, [hv["id"], wv["id"]], 180)
    stored = dict(
        stack.sql(
            "SELECT channel_id, count(*) FROM leads_inboundevent "
            "WHERE channel_id = ANY(%s) GROUP BY 1",
            [[ha["id"], hu["id"], hv["id"], wu["id"], wv["id"]]],
        )
    )
    signed_stored = stack.sql(
        "SELECT idempotency_key, count(*) FROM leads_inboundevent WHERE channel_id = %s "
        "AND idempotency_key = ANY(%s) GROUP BY 1",
        [ha["id"], signed_keys],
    )
    signed_missing = len(signed_keys) - len(signed_stored)
    signed_doubled = sum(1 for _k, c in signed_stored if c > 1)
    leads = dict(
        stack.sql(
            "SELECT channel_id, count(*) FROM leads_lead WHERE channel_id = ANY(%s) GROUP BY 1",
            [[hv["id"], wv["id"]]],
        )
    )
    five_xx = sum(
        c
        for fam in (signed, unsigned, forged, valid_hook, valid_wecom)
        for s, c in fam.answers.items()
        if s.startswith("5") and fam is not forged
    ) + sum(c for s, c in forged.answers.items() if s.startswith("5") and s != "503")
    unauth_stored = stored.get(hu["id"], 0) + stored.get(wu["id"], 0)
    valid_accepted = valid_hook.answers.get("202", 0) + valid_wecom.answers.get("200", 0)
    ok = (
        signed.failures == unsigned.failures == forged.failures == 0
        and signed.falsifying is None
        and unsigned.falsifying is None
        and forged.falsifying is None
        and unauth_stored == 0
        and signed_missing == 0
        and signed_doubled == 0
        and valid_accepted == 2 * valid_n
        # The signed chunked request went to the same channel: accepted, it is a lead too.
        and leads.get(hv["id"], 0) == valid_n + (chunked_status in (200, 202))
        and leads.get(wv["id"], 0) == valid_n
        and chunked_status in (200, 202, 411)
    )
    return {
        "ok": ok,
        "key": (
            f"{signed.sent + unsigned.sent + forged.sent} hostile requests: {five_xx} × 5xx, "
            f"{unauth_stored} stored unauthenticated, {signed_missing} signed not stored; "
            f"valid {valid_accepted}/{2 * valid_n} accepted; chunked → {chunked_status}"
        ),
        "signed_bodies": signed.figures(),
        "unauthenticated_webhooks": unsigned.figures(),
        "forged_wecom": forged.figures(),
        "five_xx": five_xx,
        "stored_from_unauthenticated": unauth_stored,
        "signed_acknowledged_or_refused": len(signed_keys),
        "signed_not_stored": signed_missing,
        "signed_stored_twice": signed_doubled,
        "valid_webhooks": valid_hook.figures(),
        "valid_wecom": valid_wecom.figures(),
        "valid_accepted": valid_accepted,
        "valid_sent": 2 * valid_n,
        "valid_leads": {"webhook": leads.get(hv["id"], 0), "wecom": leads.get(wv["id"], 0)},
        "valid_processed_within_s": waited,
        "valid_still_received": left,
        "chunked_signed_status": chunked_status,
    }
