# The two commands: `make run` and `make test`. Both use the PostgreSQL and Redis that
# DATABASE_URL / REDIS_URL name, else the project's own servers from PyPI wheels, with their
# data under var/ (crm/embedded.py).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first interpreter that really runs and is 3.11+ (a pyenv shim may exist and not run).
PYTHON_BOOT ?= $(shell for p in python3.12 python3.11 python3.13 python3; do \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium

.PHONY: help run test scale scale-pgbouncer scale-replica faults lint format messages venv chromium pgbouncer clean

help:
	@echo "make run   - web + worker + beat with the demo tenant (http://127.0.0.1:8000)"
	@echo "make test  - lint and run the whole suite, browser tests included"
	@echo "make scale - the isolation suite and the intake flow through PgBouncer (transaction pooling),"
	@echo "             then the reports on a streaming read replica (make scale-replica)"
	@echo "make faults - the fault and abuse scenarios on private servers (~37 min; FAULTS=name ...)"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "Python 3.11 or newer is needed to create .venv"; exit 1; }
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,dev]'
	touch $@

venv: $(STAMP)

run: export DEBUG ?= True
run: $(STAMP)
	$(PY) manage.py run_embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser tests need chromium, and CJK fonts for readable screenshots of Chinese pages.
CJK_FONT ?= /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

chromium:
	@{ test -x $(CHROMIUM) && test -f $(CJK_FONT); } || { \
	  echo "installing Debian's chromium and CJK fonts for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# With DATABASE_URL set, the role setup is ours to do (the embedded stack does its own).
# The suite runs in TEST_WORKERS processes (pytest-xdist), each on a test database and a
# Redis database of its own (README.md, "Tests"); TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
test: export SECRET_KEY ?= test-only-secret-key-0123456789abcdef0123456789
test: $(STAMP) lint chromium
	if [ -n "$$DATABASE_URL" ]; then $(PY) manage.py setup_roles; fi
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Past one machine (docs/scaling.md), in two runs:
# - scale-pgbouncer: the tenant isolation suite, the webhook → worker → assignment flow and
#   a 10,000-request pooling probe with the app's connections through Debian's PgBouncer
#   in transaction pooling mode, two server connections a pool (scripts/through_pgbouncer.py);
# - scale-replica: the reports alias on a streaming read replica, a primary and a hot
#   standby (pg_basebackup -R) that the run sets up in a temporary directory from the
#   embedded PostgreSQL wheel's programs, PG_BIN for others (scripts/with_replica.py).
# PYTEST_ARGS: options for both (test paths run in both). A few minutes each.
PGBOUNCER ?= /usr/sbin/pgbouncer

pgbouncer:
	@test -x $(PGBOUNCER) || { \
	  echo "installing Debian's pgbouncer for make scale"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq pgbouncer >/dev/null; }

scale: scale-pgbouncer scale-replica

scale-pgbouncer: export SECRET_KEY ?= test-only-secret-key-0123456789abcdef0123456789
scale-pgbouncer: $(STAMP) pgbouncer
	if [ -n "$$DATABASE_URL" ]; then $(PY) manage.py setup_roles; fi
	PGBOUNCER=$(PGBOUNCER) $(PY) scripts/through_pgbouncer.py $(PYTEST_ARGS)

scale-replica: export SECRET_KEY ?= test-only-secret-key-0123456789abcdef0123456789
scale-replica: $(STAMP)
	$(PY) scripts/with_replica.py $(PYTEST_ARGS)

# The fault and abuse suite (docs/reliability.md): real gunicorn, Celery worker and beat on
# private PostgreSQL and Redis under var/faults/, never DATABASE_URL's or REDIS_URL's.
# About 37 minutes; `make faults FAULTS="hostile ssrf"` runs some scenarios.
faults: $(STAMP)
	$(PY) -m faults $(FAULTS)

messages: export DEBUG ?= True
messages: $(STAMP)
	$(PY) manage.py makemessages --locale zh_Hans --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --no-obsolete
	$(PY) manage.py compilemessages --locale zh_Hans --ignore '.venv/*'

clean:
	if [ -f var/local.env ]; then $(PY) -c "from crm.embedded import Stack, var_dir; Stack(var_dir()).stop()"; fi
	rm -rf var/ .pytest_cache tests/browser/artifacts
