"""Unit tests: no service, no network beyond 127.0.0.1, one SQLite file per test.

Every test starts from the defaults plus a private database and outbox in its tmp_path,
whatever DIGEST_ variables the shell running pytest happens to have.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from digest.store.engine import get_engine, session_factory
from digest.store.migrate import upgrade
from tests.support.caches import clear_caches


@pytest.fixture(autouse=True)
def digest_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DIGEST_ variables for this test only; returns the test's folder."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 't.db'}")
    monkeypatch.setenv("DIGEST_SMTP_URL", f"outbox://{tmp_path / 'outbox'}")
    clear_caches()
    yield tmp_path
    clear_caches()


@pytest.fixture
def engine(digest_env: Path) -> Iterator[Engine]:
    """The test's SQLite database, migrated to head with the real Alembic migrations."""
    engine = get_engine()
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session
