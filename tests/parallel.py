"""Pytest plugin (addopts `-p tests.parallel`): how `make test` shares the suite between its
pytest-xdist workers (`-n 2`).

- The browser tests (tests/browser/) are one unit of work, run by one worker one after
  another: the demo tenant is seeded once (tests/browser/conftest.py copies its rows back
  for the next test) and one Chromium runs at a time. Every other test is a unit of its own,
  handed to whichever worker is free.
- The longest units are handed out first, so that no worker is left with one of them
  while the other has nothing to do: the browser tests, `make run` from an empty var/
  (tests/test_embedded.py), the whole demo story (tests/leads/test_demo.py), then the rest in
  collection order. Only the order between modules changes; a module's tests keep theirs.

Each worker's own test database and Redis database: tests/conftest.py and
tests/embedded_stack.py. Without `-n` none of this applies.
"""

from __future__ import annotations

import os

import pytest

# One unit of work each, by node-id prefix.
GROUPS = ("tests/browser/",)
# Handed out first, in this order.
FIRST = ("tests/browser/", "tests/test_embedded.py", "tests/leads/test_demo.py")


def _unit(nodeid: str) -> str:
    return next((group for group in GROUPS if nodeid.startswith(group)), nodeid)


def _rank(nodeid: str) -> int:
    return next((i for i, prefix in enumerate(FIRST) if nodeid.startswith(prefix)), len(FIRST))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SuiteScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    # The units in the workers' collection order (below), not by their number of tests.
    config.option.loadscopereorder = False
    return SuiteScheduling(config, log)


def pytest_collection_modifyitems(items):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: _rank(item.nodeid))  # stable: the rest keep their order
