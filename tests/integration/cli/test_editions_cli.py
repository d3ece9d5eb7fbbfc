"""`digest editions create` against the real broker and the session's Celery worker: an
edition due now starts sending as soon as the command has made it (its release is asked
for at once), with no beat running at all."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.factories import seed_readers, seed_stories
from tests.support.mail import wait_for_mail
from tests.support.processes import REPO
from tests.support.samples import SAMPLE_WINDOW_HOURS
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

CLI_TIMEOUT_SECONDS = 60
# Beat's release interval is 15 s, and no beat runs here: any message proves the early
# release; this bound says it came at once (a worker renders and sends in well under it).
FIRST_MESSAGE_SECONDS = 5


def test_an_edition_made_due_now_is_sent_without_waiting_for_beat(live: Stack) -> None:
    seed_stories(live.factory)
    [reader] = seed_readers(live.factory, 1, prefix="right-away")

    done = subprocess.run([sys.executable, "-m", "digest.cli", "editions", "create", "--subject", "Right away",
                           "--window-hours", str(SAMPLE_WINDOW_HOURS)], cwd=REPO, env=live.env(),
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False)
    made = time.monotonic()

    assert done.returncode == 0 and done.stderr == "", done.stderr
    [received] = wait_for_mail(live, reader, subject="Right away", timeout=FIRST_MESSAGE_SECONDS * 3)
    waited = time.monotonic() - made
    assert waited < FIRST_MESSAGE_SECONDS, f"first message {waited:.1f} s after the command returned"
    assert live.wait_for_edition(int(done.stdout), timeout=FIRST_MESSAGE_SECONDS) == "sent"
    assert str(received.message["Subject"]) == "Right away"
