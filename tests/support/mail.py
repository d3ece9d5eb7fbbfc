"""Mail in the tests: what the session's SMTP server received, and maildirs for the pollers."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

from tests.support.smtp import Received
from tests.support.stack import Stack

MAIL_TIMEOUT_SECONDS = 30


def wait_for_mail(live: Stack, address: str, *, count: int = 1, subject: str | None = None,
                  timeout: float = MAIL_TIMEOUT_SECONDS) -> list[Received]:
    """The messages the SMTP server received for `address` (optionally with `subject` in
    the Subject), once there are at least `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        got = [r for r in live.smtp.by_recipient().get(address, [])
               if subject is None or subject in str(r.message["Subject"])]
        if len(got) >= count:
            return got
        if time.monotonic() > deadline:
            log_tail = live.worker_log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{len(got)} of {count} message(s) for {address} after {timeout}s; "
                                 f"worker log:\n{log_tail}")
        time.sleep(0.05)


def mail_to(live: Stack, address: str) -> list[Received]:
    """Every message the SMTP server has received for `address` so far."""
    return live.smtp.by_recipient().get(address, [])


def text_part(message: EmailMessage) -> str:
    """The message's text/plain body (which must be there)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def html_part(message: EmailMessage) -> str:
    """The message's text/html body (which must be there)."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def write_maildir(folder: Path, messages: dict[str, bytes]) -> Path:
    """A maildir at `folder` with `messages` (file name: raw bytes) waiting in new/."""
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    for name, raw in messages.items():
        (folder / "new" / name).write_bytes(raw)
    return folder
