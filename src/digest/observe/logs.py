"""Structured logs: one JSON object per line, carrying edition and delivery ids.

Log calls pass ids as `extra={"edition_id": …, "delivery_id": …}`; the formatter puts
every such field at the top level, so a log pipeline can filter one edition's story.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

CONTEXT_FIELDS = ("edition_id", "delivery_id", "subscriber_id", "batch", "task_id", "newsletter")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (int, float, str, bool, type(None), dict, list)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ClickPrivacy(logging.Filter):
    """The access log has no line for a click redirect: it would keep the client's address
    and the copy's nonce, and what is kept of a click is only its count (docs/clicks.md).
    At hundreds of clicks a second the line is also a fair share of a click's cost. The
    open pixel's requests (/o/) are left out for the same reasons."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) >= 3
                    and isinstance(args[2], str) and args[2].startswith(("/c/", "/o/")))


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Route the root logger to stderr in `fmt` ("json" or "text")."""
    handler = logging.StreamHandler()
    handler.addFilter(ClickPrivacy())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
