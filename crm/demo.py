"""The demo tenant's kernel part: tenants, users and their seats.

`python manage.py seed_demo` runs this, then each app's own `<app>/demo.py` (when it has
one) inside the demo tenant, so every stage adds its part of the story. Idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from crm.models import Membership, Role, Tenant
from crm.tenancy import tenant_context

# username, display name, role in demo, e-mail
DEMO_USERS = [
    ("admin", "赵敏", Role.ADMIN),
    ("manager", "王建国", Role.MANAGER),
    ("marketing", "李娜", Role.MARKETING),
    ("service", "陈静", Role.SERVICE),
    ("rep1", "张伟", Role.REP),
    ("rep2", "刘洋", Role.REP),
    ("rep3", "杨帆", Role.REP),
    ("rep4", "黄磊", Role.REP),
    ("rep5", "周婷", Role.REP),
    ("rep6", "吴昊", Role.REP),
]
# The second tenant, to show switching: the admin and the manager also work there.
ACME_SEATS = [("admin", Role.ADMIN), ("manager", Role.MANAGER)]


@dataclass
class DemoWorld:
    demo: Tenant
    acme: Tenant
    users: dict  # username -> User
    memberships: dict  # username -> Membership in demo


def seed(*, reset_passwords: bool = False) -> DemoWorld:
    User = get_user_model()
    demo, _ = Tenant.objects.get_or_create(
        slug="demo", defaults={"name": "华东医疗设备有限公司（演示）", "timezone": "Asia/Shanghai"}
    )
    acme, _ = Tenant.objects.get_or_create(
        slug="acme", defaults={"name": "艾克米工业软件（演示）", "timezone": "Asia/Shanghai"}
    )

    users, memberships = {}, {}
    for username, name, role in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": name, "email": f"{username}@demo.invalid"}
        )
        if created or reset_passwords:
            user.set_password(settings.DEMO_PASSWORD)
            user.save(update_fields=["password"])
        users[username] = user
        with tenant_context(demo):  # memberships are row-level secured like tenant rows
            memberships[username], _ = Membership.objects.get_or_create(
                tenant=demo, user=user, defaults={"role": role}
            )
    with tenant_context(acme):
        for username, role in ACME_SEATS:
            Membership.objects.get_or_create(
                tenant=acme, user=users[username], defaults={"role": role}
            )
    return DemoWorld(demo=demo, acme=acme, users=users, memberships=memberships)
