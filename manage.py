#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    # Without DATABASE_URL / REDIS_URL: the project's own PostgreSQL and Redis, started
    # here if they are not running (crm/embedded.py).
    from crm.embedded import EmbeddedError, activate

    try:
        activate()
    except EmbeddedError as exc:
        sys.exit(f"The embedded PostgreSQL/Redis could not start: {exc}")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
