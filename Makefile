# The two commands: `make run` (embedded: SQLite + filesystem broker) and `make test`
# (PostgreSQL + Redis, lint, the whole suite with browser tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first interpreter that really runs and is 3.11+ (a pyenv shim may exist and not run).
PYTHON_BOOT ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Test defaults: the local servers; CI and developers may override any of them.
TEST_DATABASE_URL ?= postgres://crm_app:crm_app@127.0.0.1:5432/crm
TEST_DATABASE_OWNER_URL ?= postgres://postgres@127.0.0.1:5432/crm
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run test lint format messages venv chromium clean

help:
	@echo "make run   - start web + worker + beat on SQLite with the demo tenant (http://127.0.0.1:8000)"
	@echo "make test  - lint and run the whole suite on PostgreSQL + Redis (with browser tests)"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "Python 3.11 or newer is needed to create .venv"; exit 1; }
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

run: export DEBUG ?= True
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py run_embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

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

test: export DATABASE_URL ?= $(TEST_DATABASE_URL)
test: export DATABASE_OWNER_URL ?= $(TEST_DATABASE_OWNER_URL)
test: export REDIS_URL ?= $(TEST_REDIS_URL)
test: export SECRET_KEY ?= test-only-secret-key-0123456789abcdef0123456789
test: $(STAMP) lint chromium
	$(PY) manage.py setup_roles
	$(PY) -m pytest $(PYTEST_ARGS)

messages: export DEBUG ?= True
messages: $(STAMP)
	$(PY) manage.py makemessages --locale zh_Hans --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --no-obsolete
	$(PY) manage.py compilemessages --locale zh_Hans --ignore '.venv/*'

clean:
	rm -rf var/ .pytest_cache tests/browser/artifacts
