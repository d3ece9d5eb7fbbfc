"""Shared by every test: nothing here may need a service; see tests/integration/.

DIGEST_TEST_SHARD splits one run into two halves that scripts/test.sh runs side by side
(each with its own Redis database, PostgreSQL database and temporary folders): `a` holds
the unit and architecture tests, the integration tests on the SQLite stack, the
benchmark's smoke run and the wheel; `b` holds the rest (the PostgreSQL stack, chaos).
Unset: everything (tests/support/shards.py).
Much of a run is waiting on processes, servers and the network stack, so two halves on
two cores take well under the sum of their times.
"""

from __future__ import annotations

import os

import pytest

from tests.support.shards import SHARDS, shard_of


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = os.environ.get("DIGEST_TEST_SHARD", "")
    if not shard:
        return
    if shard not in SHARDS:
        raise pytest.UsageError(f"DIGEST_TEST_SHARD must be one of {', '.join(SHARDS)}, not {shard!r}")
    kept = [item for item in items if shard_of(item) == shard]
    config.hook.pytest_deselected(items=[item for item in items if shard_of(item) != shard])
    items[:] = kept
