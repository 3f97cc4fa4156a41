"""The suite's worker processes (pytest-xdist, `make test`) each on databases of their own:
tests/conftest.py names the test database, tests/embedded_stack.py the Redis database."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import suite_database_name
from tests.embedded_stack import _shift_db, worker_index


@pytest.mark.parametrize(
    ("url", "by", "expected"),
    [
        ("redis://127.0.0.1:6379/5", 1, "redis://127.0.0.1:6379/6"),
        ("redis://127.0.0.1:6379/0", 0, "redis://127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379", 1, "redis://127.0.0.1:6379/1"),
        (
            "redis://:secret@127.0.0.1:7000/1?timeout=2",
            2,
            "redis://:secret@127.0.0.1:7000/3?timeout=2",
        ),
    ],
)
def test_a_worker_gets_the_suites_redis_database_plus_its_number(url, by, expected):
    assert _shift_db(url, by) == expected


@pytest.mark.parametrize(
    ("suffix", "worker", "expected"),
    [
        (None, None, "test_crm"),
        ("ci", None, "test_crm_ci"),
        (None, "gw1", "test_crm_gw1"),
        ("ci", "gw0", "test_crm_ci_gw0"),
    ],
)
def test_a_worker_gets_a_test_database_of_its_own(monkeypatch, suffix, worker, expected):
    for name, value in (("CRM_TEST_DB_SUFFIX", suffix), ("PYTEST_XDIST_WORKER", worker)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert suite_database_name({"NAME": "crm", "TEST": {}}) == expected


@pytest.mark.django_db
def test_this_process_runs_on_its_own_databases():
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = connection.settings_dict["NAME"]
    assert name.endswith(f"_{worker}") if worker else "_gw" not in name
    # The cache and the Celery broker: one Redis database, this worker's.
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    if "CELERY_BROKER_URL" not in os.environ:
        assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert worker_index() == (int(worker[2:]) if worker else 0)
