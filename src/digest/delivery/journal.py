"""The send journal: what closes the crash window between an SMTP 250 and the database.

Results reach the database in bulk (one write a second, never per reader). Between a
server's 250 and that write, a crash would leave a delivery `queued` though it was sent,
and the retry would send it again. So each send_batch appends one line per accepted
message to its own local file, unbuffered (one write(2), ~2 µs), before doing anything
else. The file survives the process (SIGKILL, OOM, a database outage); it is emptied once
the chunk is in the database and removed when the batch ends.

A journal whose writer is gone (its flock is free) is replayed before any batch claims
work on this host: its deliveries are marked sent, so the retry skips them. The window
left is the write(2) itself, and a machine that dies with its disk. Journals live in a
folder per database, so two deployments on one host never mix their ids.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import ledger

log = logging.getLogger(__name__)

def journal_dir(database_url: str, base: Path | None = None) -> Path:
    key = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return (base or Path(tempfile.gettempdir()) / "digest-journal") / key


class SendJournal:
    """One batch's journal: lines of `delivery_id TAB message_id TAB story,ids`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex}.journal"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def record(self, delivery_id: int, message_id: str, story_ids: list[int] | None) -> None:
        line = f"{delivery_id}\t{message_id}\t{','.join(map(str, story_ids or ()))}\n"
        os.write(self._fd, line.encode("ascii", "replace"))

    def checkpoint(self) -> None:
        """Everything written so far is in the database now."""
        os.ftruncate(self._fd, 0)

    def close(self, keep: bool) -> None:
        """Release the journal; `keep` leaves it for a replay (the database did not get it)."""
        if not keep:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing drops the flock


def _parse(raw: bytes) -> list[dict[str, object]]:
    rows = []
    for line in raw.decode("ascii", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].isdigit():
            continue  # a line cut short by the crash itself: that message is retried
        rows.append({"id": int(parts[0]), "message_id": parts[1],
                     "story_ids": [int(i) for i in parts[2].split(",") if i.isdigit()]})
    return rows


def replay_orphans(factory: sessionmaker[Session], folder: Path) -> int:
    """Mark sent what dead writers' journals say was sent. Returns deliveries recorded."""
    if not folder.is_dir():
        return 0
    recorded = 0
    for path in folder.glob("*.journal"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            # Read through the locked descriptor: another replayer may unlink the path.
            size = os.fstat(fd).st_size
            raw = os.pread(fd, size, 0) if size else b""
            rows = _parse(raw)
            if rows:
                at = datetime.fromtimestamp(os.fstat(fd).st_mtime, UTC)
                with factory.begin() as session:
                    ledger.mark_sent(session, [{**row, "at": at} for row in rows])
                recorded += len(rows)
                log.warning("replayed %s sends from an interrupted batch's journal", len(rows))
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return recorded
