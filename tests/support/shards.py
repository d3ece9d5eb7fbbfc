"""Which half of a split run a test belongs to (tests/conftest.py, scripts/test.sh)."""

from __future__ import annotations

import pytest

SHARDS = ("a", "b")


def shard_of(item: pytest.Item) -> str:
    """`a`: unit and architecture tests, integration tests on the SQLite stack, the
    benchmark's smoke run and the installed wheel's tests; `b`: the rest (the PostgreSQL
    stack, chaos). Measured on the 2-core machine: 13 and 17.5 minutes before the smoke run
    and the wheel moved to `a` (about 2 minutes)."""
    if item.nodeid.startswith(("tests/unit/", "tests/architecture/", "tests/integration/bench/",
                               "tests/integration/cli/")):
        return "a"
    callspec = getattr(item, "callspec", None)
    return "a" if callspec is not None and callspec.params.get("stack") == "sqlite" else "b"
