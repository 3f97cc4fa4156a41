"""Pytest plugin, loaded with `-p` before Django reads its settings: when the environment
names no DATABASE_URL / REDIS_URL, the suite runs on the embedded PostgreSQL and Redis
(crm/embedded.py), started here if `make run` has not started them, and stopped at the end
unless something else still holds them.

The suite uses Redis database 1, so a running `make run` (database 0) keeps its queue; and
it runs with DEBUG off, as it does on any other servers, but over plain HTTP: the test
client and the live server speak http, so no redirect to https and no Secure-only cookies
(settings.py turns both on when DEBUG is off).

Under pytest-xdist (`-n 2`, as `make test` runs) the main pytest process loads this
plugin first: it holds the embedded servers (under their file lock) until the run ends, and
its workers, started after it, inherit their settings. Each worker gets a Redis database of
its own, the suite's database plus the worker's number (gw0: 1, gw1: 2 on the embedded
Redis; with REDIS_URL naming database N: N, N+1), for the cache and the Celery broker
alike, so one worker's Celery worker never takes the other's tasks. The worker's test
database is tests/conftest.py's.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from crm.embedded import EmbeddedError, activate


def worker_index() -> int:
    """0 without xdist or on its first worker (gw0), 1 on gw1, ..."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def _shift_db(url: str, by: int) -> str:
    """`url` with its Redis database number raised by `by` (none named: database 0)."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    return urlunsplit(parts._replace(path=f"/{(int(path) if path.isdigit() else 0) + by}"))


for _name in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES"):
    os.environ.setdefault(_name, "False")

_worker = worker_index()
_given = {name: os.environ.get(name) for name in ("REDIS_URL", "CELERY_BROKER_URL")}

try:
    activate(skip=("DEBUG", "PUBLIC_BASE_URL"), redis_db=1 + _worker)
except EmbeddedError as exc:
    raise SystemExit(f"The embedded PostgreSQL/Redis could not start: {exc}") from None

if _worker:
    for _name, _url in _given.items():
        if _url:  # a Redis the environment names: this worker's database of it
            os.environ[_name] = _shift_db(_url, _worker)
