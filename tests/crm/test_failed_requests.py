"""What a request that raises leaves behind and answers (crm/outage.py), in-process.

The real outages (a gunicorn process, PostgreSQL cut off) are in test_outage.py; here the
views of this module's own URLconf raise the errors themselves.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.decorators import login_not_required
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from crm.audit import audit
from crm.models import AuditEvent
from crm.tenancy import tenant_context
from tests.conftest import MODEL_BACKEND

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def write_then_fail(request):
    audit(tenant=request.tenant, actor=request.user, action="test.half_done")
    raise RuntimeError("the view fails after writing")


@login_not_required
def database_gone(request):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@login_not_required
def connection_closed(request):
    try:
        raise InterfaceError("connection already closed")
    except InterfaceError as exc:
        raise ValueError("while rendering") from exc


@login_not_required
def plain_failure(request):
    raise RuntimeError("a bug")


@login_not_required
def fine(request):
    return HttpResponse("ok")


urlpatterns = [
    path("write-then-fail/", write_then_fail),
    path("hooks/gone/", database_gone),
    path("healthz", database_gone),
    path("page/gone/", database_gone),
    path("page/closed/", connection_closed),
    path("page/bug/", plain_failure),
    path("page/fine/", fine),
]


@pytest.fixture
def caller():
    return Client(raise_request_exception=False)


def _audited(tenant, action):
    with tenant_context(tenant):
        return AuditEvent.objects.filter(action=action).count()


def test_a_view_that_raises_after_writing_leaves_nothing_stored(caller, world):
    caller.force_login(world.a.admin.user, backend=MODEL_BACKEND)
    response = caller.get("/write-then-fail/")
    assert response.status_code == 500
    assert _audited(world.a.tenant, "test.half_done") == 0


def test_the_failure_itself_reaches_the_caller_inside_a_transaction(world):
    # A tenant's request inside the test's transaction: the request's savepoint is marked
    # for rollback when the view raises. Leaving the tenant's scope must not query on that
    # broken savepoint, or the caller gets "An error occurred in the current transaction"
    # instead of the view's own error (and it must name the view's error as the cause).
    client = Client()
    client.force_login(world.a.admin.user, backend=MODEL_BACKEND)
    with pytest.raises(RuntimeError, match="the view fails after writing"):
        client.get("/write-then-fail/")
    assert _audited(world.a.tenant, "test.half_done") == 0


def test_a_failed_anonymous_request_leaves_the_callers_transaction_alone(caller, world):
    # The test's own transaction was open before the request: it is not the request's.
    assert caller.get("/page/bug/").status_code == 500
    assert _audited(world.a.tenant, "test.seed") == 1


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_database_errors_answer_503_json_on_the_hooks_and_healthz(caller, settings, debug):
    settings.DEBUG = debug
    for url in ("/hooks/gone/", "/healthz"):
        response = caller.post(url, b"{}", content_type="application/json")
        assert response.status_code == 503
        assert response["Retry-After"] == "10"
        assert response.json() == {"error": "database unavailable, try again later", "retry": True}


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("url", ["/page/gone/", "/page/closed/"])
def test_database_errors_answer_the_503_page_elsewhere(caller, settings, debug, url):
    settings.DEBUG = debug
    response = caller.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "服务暂时不可用" in html and "Traceback" not in html
    assert response["Content-Language"] == "zh-hans"
    caller.cookies["django_language"] = "en"
    assert "Service temporarily unavailable" in caller.get(url).content.decode()


def test_other_errors_stay_500_and_other_answers_are_untouched(caller):
    assert caller.get("/page/bug/").status_code == 500
    response = caller.get("/page/fine/")
    assert response.status_code == 200 and "Retry-After" not in response
