"""The process-wide caches the library keeps its settings and engine in."""

from __future__ import annotations

from digest.config import get_settings
from digest.store.engine import get_engine


def clear_caches() -> None:
    """Forget the cached settings and engine: the next get_settings()/get_engine() reads
    the environment as it is now."""
    get_settings.cache_clear()
    get_engine.cache_clear()
