"""Which workers consume the queue, what they run and the limits they send under, for the
ops view (Celery inspect, and the digest_limits control command each worker answers)."""

from __future__ import annotations

import threading
import time
from typing import Any

from digest.worker.app import app

WORKERS_CACHE_SECONDS = 5.0
_workers_cache: dict[str, Any] = {"at": 0.0, "value": None}
_workers_lock = threading.Lock()


def workers_online(queue: str) -> list[dict[str, Any]] | None:
    """Workers consuming `queue` and what they run; None when the broker does not answer.
    Never waits: the answer is refreshed in the background at most every
    WORKERS_CACHE_SECONDS, since an inspect waits a second for replies."""
    with _workers_lock:
        stale = time.monotonic() - _workers_cache["at"] >= WORKERS_CACHE_SECONDS
        if stale and not _workers_cache.get("refreshing"):
            _workers_cache["refreshing"] = True
            threading.Thread(target=_refresh_workers, args=(queue,), daemon=True).start()
        return _workers_cache["value"]  # type: ignore[no-any-return]


def workers_asked() -> bool:
    """Whether an answer (or the broker's silence) has come back yet: until then
    workers_online's None means "not known yet", not "unreachable"."""
    with _workers_lock:
        return bool(_workers_cache.get("answered"))


def _refresh_workers(queue: str) -> None:
    value: list[dict[str, Any]] | None
    try:
        inspector = app.control.inspect(timeout=1.0)
        queues = inspector.active_queues() or {}
        active = inspector.active() or {}
        mine = sorted(name for name, qs in queues.items() if any(q.get("name") == queue for q in qs))
        limits: dict[str, Any] = {}
        if mine:  # an empty destination would ask every worker on the broker
            for reply in app.control.broadcast("digest_limits", reply=True, timeout=1.0, destination=mine) or []:
                limits.update(reply)
        value = [{"name": name, "running": [f"{task.get('name', '?')}{tuple(task.get('args') or ())}"
                                            for task in active.get(name, [])],
                  # None from a worker too old to answer digest_limits
                  "limits": limits.get(name) if isinstance(limits.get(name), dict) else None} for name in mine]
    except Exception:  # noqa: BLE001 - the broker being down is shown as such
        value = None
    with _workers_lock:
        _workers_cache.update(at=time.monotonic(), value=value, refreshing=False, answered=True)
