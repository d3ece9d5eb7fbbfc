"""JSON from outside (webhook bodies, story sources) read with a bound on nesting.

Python's decoder recurses once per level: a body of a million `[` raises RecursionError,
which no caller expects from a parser, and a value a few hundred levels deep parses but
then costs every function that walks it. Both are refused here as a ValueError, the error
every caller already handles for bad JSON.
"""

from __future__ import annotations

import json
from typing import Any

JSON_MAX_DEPTH = 64


class JsonTooDeep(ValueError):
    """The JSON nests deeper than JSON_MAX_DEPTH."""


def load_json(data: str | bytes) -> Any:
    """json.loads, refusing nesting deeper than JSON_MAX_DEPTH with JsonTooDeep; other bad
    JSON raises json.JSONDecodeError (both are ValueError)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep(f"nested more than {JSON_MAX_DEPTH} levels deep") from None
    if _depth_over(value, JSON_MAX_DEPTH):
        raise JsonTooDeep(f"nested more than {JSON_MAX_DEPTH} levels deep")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                pending.append((child, depth + 1))
    return False
