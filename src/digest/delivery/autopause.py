"""Auto-pause: an edition stops itself when most of its recent attempts fail (a broken SMTP
relay, a blocklisting), instead of burning through the list. Ops see why and resume it.

Also the one way delivery errors are grouped for people: `error_reason` blurs ids and
numbers out of an SMTP reply, so a thousand "452 4.2.2 mailbox full" read as one line.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

from sqlalchemy.orm import Session

from digest.delivery import ledger
from digest.editions import lifecycle
from digest.store import utcnow

AUTO_PAUSE_PREFIX = "auto-paused"
_CODE = re.compile(r"^(\d{3})\b")


def error_reason(error: str) -> str:
    """A short, groupable reason: the SMTP code and the text with numbers and ids blurred."""
    text_ = " ".join(error.split())
    text_ = re.sub(r"\b[0-9a-f]{8,}\b", "…", text_)
    text_ = re.sub(r"\d+(\.\d+)+", "#", text_[4:] if _CODE.match(text_) else text_)
    code = _CODE.match(" ".join(error.split()))
    return f"{code.group(1)} {text_[:60]}".strip() if code else text_[:64]


def check_auto_pause(session: Session, edition_id: int, window: int, ratio: float,
                     now: datetime | None = None) -> str | None:
    """Pause a sending edition whose last `window` attempts failed at `ratio` or more.
    Returns the reason when this call paused it."""
    rows = ledger.recent_errors(session, edition_id, window)
    if len(rows) < window:
        return None
    failures = [error for error in rows if error]
    if len(failures) / len(rows) < ratio:
        return None
    common, count = Counter(error_reason(e) for e in failures).most_common(1)[0]
    reason = (f"{AUTO_PAUSE_PREFIX}: {len(failures)} of the last {len(rows)} attempts failed "
              f"(most often {common!r}, {count}×)")
    return reason if lifecycle.auto_pause(session, edition_id, now or utcnow(), reason) else None
