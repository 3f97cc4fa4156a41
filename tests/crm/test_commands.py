import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

ROOT = settings.BASE_DIR


def _run(args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = _run(["manage.py", "check"], DEBUG="False")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


def test_production_mode_refuses_a_short_secret_key():
    result = _run(["manage.py", "check"], DEBUG="False", SECRET_KEY="short")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_setup_roles_refuses_one_role_for_both(monkeypatch):
    url = "postgres://postgres@127.0.0.1:5432/crm"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATABASE_OWNER_URL", url)
    with pytest.raises(CommandError, match="same role"):
        call_command("setup_roles")


def test_setup_roles_needs_the_owner_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://crm_app@127.0.0.1:5432/crm")
    monkeypatch.delenv("DATABASE_OWNER_URL", raising=False)
    with pytest.raises(CommandError, match="DATABASE_OWNER_URL"):
        call_command("setup_roles")
