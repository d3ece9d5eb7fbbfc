"""Which workers consume the queue and what they run, for the ops view (Celery inspect)."""

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


def _refresh_workers(queue: str) -> None:
    value: list[dict[str, Any]] | None
    try:
        inspector = app.control.inspect(timeout=1.0)
        queues = inspector.active_queues() or {}
        active = inspector.active() or {}
        mine = sorted(name for name, qs in queues.items() if any(q.get("name") == queue for q in qs))
        value = [{"name": name, "running": [f"{task.get('name', '?')}{tuple(task.get('args') or ())}"
                                            for task in active.get(name, [])]} for name in mine]
    except Exception:  # noqa: BLE001 - the broker being down is shown as such
        value = None
    with _workers_lock:
        _workers_cache.update(at=time.monotonic(), value=value, refreshing=False)
