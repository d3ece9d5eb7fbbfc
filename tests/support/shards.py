"""Which half of a split run a test belongs to (tests/conftest.py, scripts/test.sh)."""

from __future__ import annotations

import pytest

SHARDS = ("a", "b")


def shard_of(item: pytest.Item) -> str:
    """`a`: unit and architecture tests, and integration tests on the SQLite stack; `b`: the
    rest (the PostgreSQL stack, chaos, the benchmark's smoke run)."""
    if item.nodeid.startswith(("tests/unit/", "tests/architecture/")):
        return "a"
    callspec = getattr(item, "callspec", None)
    return "a" if callspec is not None and callspec.params.get("stack") == "sqlite" else "b"
