"""Shared fixtures: the database as the app role, and a two-tenant world.

On PostgreSQL the test database is created and migrated by the owner role (as in
production) and every test then connects as the app role, so row-level security binds the
tests exactly as it binds the product.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from crm.audit import audit
from crm.models import AuditEvent, Membership, Role, Tenant
from crm.tenancy import tenant_context
from tests.factories import MembershipFactory, TenantFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

# For a test that runs platform-wide code (all_tenants_context: the superuser's admin, the
# sweeps): that code runs on the platform role's own connection, which sees committed rows
# only, so the test commits its rows (transaction=True).
platform_db = pytest.mark.django_db(transaction=True, databases=["default", "platform"])


def suite_database_name(config: dict) -> str:
    """test_crm, test_crm_<CRM_TEST_DB_SUFFIX> when several suites share one server
    (parallel work), and under pytest-xdist one per worker: test_crm_gw0, test_crm_<suffix>_gw1."""
    name = config["TEST"].get("NAME") or f"test_{config['NAME']}"
    if os.environ.get("CRM_TEST_DB_SUFFIX"):
        name = f"test_crm_{os.environ['CRM_TEST_DB_SUFFIX']}"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        name = f"{name}_{os.environ['PYTEST_XDIST_WORKER']}"
    return name


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    if "owner" not in settings.DATABASES:
        default = connections["default"].settings_dict
        default["TEST"]["NAME"] = suite_database_name(default)
        with django_db_blocker.unblock():
            config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
            # Never the real database: the platform alias follows default to the test one.
            connections["platform"].close()
            connections["platform"].settings_dict["NAME"] = connections["default"].settings_dict[
                "NAME"
            ]
        yield
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=0)
        return

    owner, app = connections["owner"], connections["default"]
    owner.settings_dict["TEST"]["NAME"] = suite_database_name(owner.settings_dict)
    with django_db_blocker.unblock():
        original_name = owner.settings_dict["NAME"]
        # Creates test_<name> and migrates it as the owner: RLS policies and the app role's
        # grants are installed by post_migrate, exactly as in production.
        test_name = owner.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        app.close()
        app.settings_dict["NAME"] = settings.DATABASES["default"]["NAME"] = test_name
        # The platform role (BYPASSRLS) on the same test database, on its own connection
        # (not a TEST MIRROR of the app role's): a test that needs it says
        # @pytest.mark.django_db(transaction=True, databases=["default", "platform"]).
        platform = connections["platform"]
        platform.close()
        platform.settings_dict["NAME"] = settings.DATABASES["platform"]["NAME"] = test_name
        if "reports" in settings.DATABASES:
            # A replica (REPORTS_DATABASE_URL, `make scale`'s tests/scale/test_replica.py):
            # the test database reaches it by streaming replication; a test that reads
            # there commits its rows and waits for the replay first.
            reports = connections["reports"]
            reports.close()
            reports.settings_dict["NAME"] = settings.DATABASES["reports"]["NAME"] = test_name
        with owner.cursor() as cursor:
            # Only for the suite: TransactionTestCase empties tables with TRUNCATE.
            role = owner.ops.quote_name(app.settings_dict["USER"])
            cursor.execute(f"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {role}")
        owner.close()
    yield
    with django_db_blocker.unblock():
        app.close()
        connections["platform"].close()
        if "reports" in settings.DATABASES:
            connections["reports"].close()
        # Worker and live-server threads keep their (reused) connections: end them, or
        # the database cannot be dropped.
        with owner.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [test_name],
            )
        owner.creation.destroy_test_db(original_name, verbosity=0)


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language (Chinese): a request's language stays
    active in the thread after it, and must not decide what a later test sees."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def english():
    """Run in English: for tests that assert on message texts (the default is Chinese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # No collectstatic before tests: serve static files from the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _attachments_in_tmp(tmp_path_factory, monkeypatch):
    """Uploaded files (opportunities' attachments) go to a temporary directory, never into
    the checkout's var/."""
    from django.core.files.storage import FileSystemStorage

    from opportunities.models import Attachment

    location = tmp_path_factory.mktemp("attachments")
    monkeypatch.setattr(
        Attachment._meta.get_field("file"), "storage", FileSystemStorage(location=location)
    )


@dataclass
class Side:
    """One tenant's cast: an admin, a manager, a rep, and one audit event."""

    tenant: Tenant
    admin: Membership
    manager: Membership
    rep: Membership
    audit_event: AuditEvent
    extra: dict = field(default_factory=dict)  # objects other apps' tests build on demand


@dataclass
class World:
    a: Side
    b: Side

    def side(self, name: str) -> Side:
        return {"a": self.a, "b": self.b}[name]


def make_side(slug: str) -> Side:
    tenant = TenantFactory(slug=slug, name=f"{slug} 公司")
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN, user__username=f"{slug}-admin")
    manager = MembershipFactory(tenant=tenant, role=Role.MANAGER, user__username=f"{slug}-mgr")
    rep = MembershipFactory(tenant=tenant, role=Role.REP, user__username=f"{slug}-rep")
    with tenant_context(tenant):
        event = audit(tenant=tenant, actor=admin.user, action="test.seed", obj=admin)
    return Side(tenant=tenant, admin=admin, manager=manager, rep=rep, audit_event=event)


@pytest.fixture
def world(db) -> World:
    return World(a=make_side("alpha"), b=make_side("beta"))


@pytest.fixture
def login(client):
    """login(membership_or_user) → the test client, signed in (tenant chosen if a membership)."""

    def _login(who):
        user = who.user if isinstance(who, Membership) else who
        client.force_login(user, backend=MODEL_BACKEND)
        if isinstance(who, Membership):
            session = client.session
            session["crm_tenant_id"] = who.tenant_id
            session.save()
        return client

    return _login


@pytest.fixture
def en(login):
    """login(), with the interface in English (the msgids) rather than Chinese."""

    def _login(who):
        client = login(who)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return _login


@pytest.fixture
def celery_worker_thread():
    """A real Celery worker (solo pool, in a thread) on the real broker, for the flows that
    cross Celery. Use with transactional tests: the worker reads committed rows."""
    from celery.contrib.testing.worker import start_worker

    from crm.celery import app
    from leads.intake.services import forget_announcements

    app.control.purge()
    forget_announcements()  # the purged tasks' marks: the next event announces again
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def wait_for(predicate, timeout=20.0):
    """Poll `predicate` until it is true (True) or `timeout` seconds pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
