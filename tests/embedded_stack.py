"""Pytest plugin, loaded with `-p` before Django reads its settings: when the environment
names no DATABASE_URL / REDIS_URL, the suite runs on the embedded PostgreSQL and Redis
(crm/embedded.py), started here if `make run` has not started them, and stopped at the end
unless something else still holds them.

The suite uses Redis database 1, so a running `make run` (database 0) keeps its queue; and
it runs with DEBUG off, as it does on any other servers, but over plain HTTP: the test
client and the live server speak http, so no redirect to https and no Secure-only cookies
(settings.py turns both on when DEBUG is off).
"""

import os

from crm.embedded import EmbeddedError, activate

for _name in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES"):
    os.environ.setdefault(_name, "False")

try:
    activate(skip=("DEBUG", "PUBLIC_BASE_URL"), redis_db=1)
except EmbeddedError as exc:
    raise SystemExit(f"The embedded PostgreSQL/Redis could not start: {exc}") from None
