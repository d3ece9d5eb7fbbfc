"""A maildir, polled: each message in new/ handled in its own transaction, then moved to
cur/ marked seen.

A message moves only after its changes committed: a crash in between leaves it in new/ and
the next poll handles it again, which is harmless because every handler here is
idempotent (an unsubscribe, a bounce or a complaint applied twice changes nothing more).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from digest.errors import NotFound

R = TypeVar("R")


class NotAMaildir(NotFound, FileNotFoundError):
    """The configured folder has no new/: a setting points at the wrong place."""


def process_maildir(factory: sessionmaker[Session], folder: Path, handle: Callable[[Session, bytes], R],
                    max_bytes: int) -> list[R]:
    """`handle` each message of `folder`/new (its first `max_bytes`), oldest name first."""
    new, cur = folder / "new", folder / "cur"
    if not new.is_dir():
        raise NotAMaildir(f"{folder} is not a maildir (no new/ folder)")
    cur.mkdir(exist_ok=True)
    results: list[R] = []
    for path in sorted(p for p in new.iterdir() if p.is_file() and not p.name.startswith(".")):
        raw = path.read_bytes()[:max_bytes]
        with factory.begin() as session:
            results.append(handle(session, raw))
        os.replace(path, cur / f"{path.name.split(':', 1)[0]}:2,S")
    return results
