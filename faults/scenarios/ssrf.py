"""Robot / SMS gateway URLs pointing at loopback, private, link-local, shared and cloud
metadata addresses are refused by every URL-taking notification adapter (WeCom robot,
DingTalk robot, SMS gateway), in any spelling (127.1, 2130706433, 0x7f000001,
[::ffff:127.0.0.1] …), including a DNS name that resolves to 127.0.0.1 at send time; and
a redirect is never followed (the redirect case runs with private URLs allowed, so that
the redirecting server itself is reachable). A listener on 127.0.0.1 counts the requests
that got through: there must be none."""

from __future__ import annotations

from faults.httpd import Endpoint


def run(stack, world) -> dict:
    inner = Endpoint()
    hop = Endpoint(redirect_to=f"http://127.0.0.1:{inner.port}/latest/meta-data/")
    with Endpoint() as target, inner, hop:
        p = target.port
        urls = [
            f"http://127.0.0.1:{p}/robot",
            f"https://127.0.0.1:{p}/robot",
            f"http://localhost:{p}/robot",
            f"http://[::1]:{p}/robot",
            f"http://127.1:{p}/robot",
            f"http://2130706433:{p}/robot",
            f"http://0x7f000001:{p}/robot",
            f"http://0177.0.0.1:{p}/robot",
            f"http://0.0.0.0:{p}/robot",
            f"http://[::ffff:127.0.0.1]:{p}/robot",
            f"http://[::]:{p}/robot",
            f"http://rebind.faults.test:{p}/robot",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.100.100.200/latest/meta-data/",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "file:///etc/passwd",
            f"gopher://127.0.0.1:{p}/_x",
        ]
        answer = stack.dj(
            "ssrf",
            urls=urls,
            rebind_host="rebind.faults.test",
            redirect_url=hop.url,
            _env={"NOTIFY_ALLOW_PRIVATE_URLS": "False"},
        )
    results, redirects = answer["results"], answer["redirects"]
    sent = [r for r in results if r["outcome"] == "sent"]
    refused = [r for r in results if r["outcome"] == "refused"]
    errors = [r for r in results if r["outcome"] == "error"]
    followed = [r for r in redirects if r["outcome"] == "sent"] + (
        [{"inner_hits": len(inner.hits)}] if inner.hits else []
    )
    ok = not sent and not target.hits and not inner.hits and not followed
    return {
        "ok": ok,
        "key": (
            f"{len(results)} attempts ({len(urls)} URLs × 3 adapters): {len(refused)} refused, "
            f"{len(errors)} invalid, {len(sent)} sent; listener hits {len(target.hits)}; "
            f"redirect followed {len(inner.hits)}×"
        ),
        "attempts": len(results),
        "refused": len(refused),
        "invalid_or_error": len(errors),
        "sent": len(sent),
        "sent_examples": sent[:5],
        "error_examples": errors[:4],
        "listener_hits": len(target.hits),
        "redirects": redirects,
        "redirect_target_hits": len(inner.hits),
        "redirector_hits": len(hop.hits),
    }
