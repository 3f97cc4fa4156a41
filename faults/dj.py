"""Django-side helpers of the suite, run as `python -m faults.dj <command> '<json>'` with
the stack's environment (the app role, DEBUG off). Each prints one JSON line.

Everything here goes through the product's own code: the channel_create command, the
models inside tenant_context(), notify(), the notification adapters.
"""

from __future__ import annotations

import base64
import io
import json
import random
import sys
import time
from datetime import timedelta

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from crm.models import Membership, Role, Tenant  # noqa: E402
from crm.tenancy import tenant_context  # noqa: E402

PASSWORD = "faults-pass-2026-Qz"
TENANTS = {"faults-a": "甬江精密机械（故障演练 A）", "faults-b": "钱塘液压科技（故障演练 B）"}
WECOM_CORP_ID = "ww5f3a9c21d07e4b18"
WECOM_TOKEN = "Fq7uLw2N"
WECOM_AES_KEY = base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")


def _tenant(slug: str) -> Tenant:
    return Tenant.objects.get(slug=slug)


def world(**_) -> dict:
    """Two tenants, each with an admin, a manager and a rep; one user in both."""
    User = get_user_model()
    out = {}
    for slug, name in TENANTS.items():
        tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name})
        letter = slug[-1]
        members = {}
        for role in (Role.ADMIN, Role.MANAGER, Role.REP):
            username = f"{letter}-{role}"
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.invalid"}
            )
            if created:
                user.set_password(PASSWORD)
                user.save(update_fields=["password"])
            with tenant_context(tenant):
                m, _ = Membership.objects.get_or_create(
                    tenant=tenant, user=user, defaults={"role": role}
                )
            members[role] = m.pk
        out[slug] = {"id": tenant.pk, "members": members}
    # login_abuse's users, one per phase (a phase's failures must not slow the next).
    for username in ("victim-proxy", "victim-direct"):
        victim, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.invalid"}
        )
        if created:
            victim.set_password(PASSWORD)
            victim.save(update_fields=["password"])
            with tenant_context(_tenant("faults-a")):
                Membership.objects.get_or_create(
                    tenant=_tenant("faults-a"), user=victim, defaults={"role": Role.REP}
                )
    out["password"] = PASSWORD
    return out


def channel(*, tenant: str, type: str = "web_form", name: str, wecom: bool = False) -> dict:
    out = io.StringIO()
    call_command(
        "channel_create",
        tenant=tenant,
        channel_type=type,
        name=name,
        **({"preset": "wecom"} if wecom else {}),
        stdout=out,
        stderr=io.StringIO(),
    )
    data = json.loads(out.getvalue().strip().splitlines()[-1])
    from leads.models import Channel

    with tenant_context(_tenant(tenant)):
        ch = Channel.objects.get(key=data["key"])
        if wecom:
            ch.wecom_corp_id, ch.wecom_token, ch.wecom_aes_key = (
                WECOM_CORP_ID,
                WECOM_TOKEN,
                WECOM_AES_KEY,
            )
            ch.save(update_fields=["wecom_corp_id", "wecom_token", "wecom_aes_key"])
            data.update(corp_id=WECOM_CORP_ID, token=WECOM_TOKEN, aes_key=WECOM_AES_KEY)
        data["id"] = ch.pk
    return data


def wecom_encrypt(*, msgs: list[str]) -> dict:
    from leads.intake.wecom import encrypt_message

    return {"encrypted": [encrypt_message(WECOM_AES_KEY, WECOM_CORP_ID, m) for m in msgs]}


def markers(*, tenant: str, marker: str, n: int, channel_id: int) -> dict:
    """`n` leads whose company carries the tenant's marker (the pooled scenario's rows)."""
    from leads.models import Channel, Lead

    t = _tenant(tenant)
    with tenant_context(t):
        ch = Channel.objects.get(pk=channel_id)
        Lead.objects.bulk_create(
            [
                Lead(
                    tenant=t,
                    channel=ch,
                    company=f"{marker}-{i:04d} 机械有限公司",
                    contact_name=f"{marker}-{i}",
                    phone=f"+86139571{random.randint(10000, 99999)}",
                    source_grade="B",
                )
                for i in range(n)
            ]
        )
    return {"created": n}


def sla_leads(*, tenant: str, n: int, window: float, channel_id: int, minutes: int) -> dict:
    """`n` unassigned B-class leads whose `unassigned` threshold falls due spread evenly
    over the next `window` seconds (created_at = now − minutes + offset)."""
    from leads.assignment.sla import sla_policy
    from leads.models import Channel, Lead

    t = _tenant(tenant)
    now = timezone.now()
    with tenant_context(t):
        policy = sla_policy()
        policy.unassigned_minutes = minutes
        policy.a_unassigned_minutes = minutes
        policy.is_active = True
        policy.save()
        ch = Channel.objects.get(pk=channel_id)
        leads = [
            Lead(
                tenant=t,
                channel=ch,
                company=f"时钟测试{i:05d}号有限公司",
                phone=f"+86139571{i:05d}",
                source_grade="B",
                status="new",
                created_at=now - timedelta(minutes=minutes) + timedelta(seconds=window * i / n),
            )
            for i in range(n)
        ]
        Lead.objects.bulk_create(leads, batch_size=1000)
    return {"created": n, "first_due": now.isoformat(), "window_s": window}


def notify_setup(*, tenant: str, url: str, cooldown: int, event: str) -> dict:
    """A WeCom robot channel at `url` and the manager's preference for `event` on it."""
    from crm.models import NotificationPreference, Outlet

    t = _tenant(tenant)
    with tenant_context(t):
        ch, _ = Outlet.objects.update_or_create(
            tenant=t,
            kind="wecom",
            defaults={"name": "故障演练机器人", "url": url, "cooldown_seconds": cooldown},
        )
        manager = Membership.objects.get(tenant=t, user__username=f"{tenant[-1]}-manager")
        NotificationPreference.objects.update_or_create(
            tenant=t, membership=manager, event=event, defaults={"channels": ["in_app", "wecom"]}
        )
    return {"channel_id": ch.pk, "manager": manager.pk}


def notify_burst(*, tenant: str, n: int, seconds: float, event: str, marker: str) -> dict:
    """`n` alerts to the manager, evenly over `seconds`, each naming a unique marker."""
    from crm.notify import notify

    t = _tenant(tenant)
    with tenant_context(t):  # memberships are tenant rows (row-level security)
        manager = Membership.objects.get(tenant=t, user__username=f"{tenant[-1]}-manager")
    started = time.monotonic()
    errors = 0
    for i in range(n):
        due = started + seconds * i / n
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            with tenant_context(t):
                notify(
                    event=event,
                    recipients=[manager],
                    params={"lead": f"{marker}-{i:05d}", "minutes": 1},
                    link="",
                )
        except Exception as exc:
            errors += 1
            print(f"notify {i}: {exc!r}", file=sys.stderr)
    return {"sent": n - errors, "errors": errors, "seconds": round(time.monotonic() - started, 1)}


def ssrf(*, urls: list[str], rebind_host: str, redirect_url: str) -> dict:
    """Send through every URL-taking adapter to each URL; nothing may leave. Also: a name
    that resolves to 127.0.0.1 at send time, and a redirect (with private URLs allowed, so
    that the redirecting server is reachable) must not be followed."""
    import socket

    from django.test.utils import override_settings

    from crm.models import Delivery, Outlet
    from crm.notify_adapters import DeliveryError, RefusedDestination, adapter_for

    t = _tenant("faults-a")
    results = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        # An attacker's DNS name that answers 127.0.0.1.
        if host == rebind_host:
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = rebinding

    def attempt(kind: str, url: str) -> dict:
        ch = Outlet(tenant=t, kind=kind, name="ssrf", url=url, token="t", secret="SEC1")
        delivery = Delivery(tenant=t, channel=ch, to="13957123481", mentions=[])
        try:
            status = adapter_for(kind).send(ch, delivery, "ssrf", "ssrf probe")
        except RefusedDestination as exc:
            return {"kind": kind, "url": url, "outcome": "refused", "error": str(exc)[:160]}
        except DeliveryError as exc:
            return {"kind": kind, "url": url, "outcome": "error", "error": str(exc)[:160]}
        return {"kind": kind, "url": url, "outcome": "sent", "status": status}

    assert not settings.NOTIFY_ALLOW_PRIVATE_URLS
    for url in urls:
        for kind in ("wecom", "dingtalk", "sms"):
            results.append(attempt(kind, url))
    with override_settings(NOTIFY_ALLOW_PRIVATE_URLS=True):
        redirects = [attempt(kind, redirect_url) for kind in ("wecom", "dingtalk", "sms")]
    socket.getaddrinfo = real_getaddrinfo
    return {"results": results, "redirects": redirects}


COMMANDS = {
    f.__name__: f
    for f in (world, channel, wecom_encrypt, markers, sla_leads, notify_setup, notify_burst, ssrf)
}

if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(COMMANDS[name](**args), ensure_ascii=False, default=str))
