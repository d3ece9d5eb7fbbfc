"""Two real beat processes: one edition goes out once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.conftest import REPO, Stack
from tests.integration.helpers import due_edition, seed_readers, seed_stories

pytestmark = pytest.mark.integration


def test_two_beats_release_an_edition_exactly_once(live: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 80)
    edition_id = due_edition(live.factory)
    beats = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel=INFO",
             f"--schedule={tmp_path / f'beat-{n}'}"],
            cwd=REPO, env=live.env(DIGEST_RELEASE_EVERY_SECONDS="0.5", DIGEST_SWEEP_EVERY_SECONDS="1"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for n in range(2)
    ]
    try:
        live.wait_for_edition(edition_id, timeout=60)
        live.drain()
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(timeout=20)
    received = live.smtp.by_recipient()
    assert sorted(received) == sorted(addresses)
    assert all(len(copies) == 1 for copies in received.values())
