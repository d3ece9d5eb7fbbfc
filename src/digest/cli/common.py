"""What every command shares: the console, the database check, the actor, the actions'
world, and one way to print tables and JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from digest import actions
from digest.config import get_settings
from digest.errors import DigestError
from digest.store import current_and_head, get_engine, is_initialised, session_factory
from digest.worker import enqueue_batch, enqueue_notice, release_now

out = Console()
ACTOR = actions.Actor.command_line()


class UserError(DigestError):
    """Shown as one line on stderr; exit status 1."""


def require_database() -> None:
    if not is_initialised(get_engine()):
        raise UserError("the database is not initialised: run `digest init` first")
    current, head = current_and_head(get_engine())
    if current != head:
        raise UserError(f"the database schema is at revision {current}, this digest needs {head}: "
                        "run `digest init` to upgrade it")


def deps() -> actions.Deps:
    """The actions' world for a command: this process's database, settings and broker."""
    require_database()
    return actions.Deps(session_factory(), get_settings(), enqueue_batch, enqueue_notice, release_now)


def cells(*values: object) -> list[Text]:
    """Table cells that print what they hold. Titles, subjects and names come from feeds,
    editors and readers: as str, Rich would read "[/b]" in them as markup (and raise) and
    ":name:" as an emoji."""
    return [value if isinstance(value, Text) else Text("" if value is None else str(value)) for value in values]


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], title: str | None = None) -> Table:
    """The one way a command prints a table: every cell escaped (see `cells`)."""
    result = Table(*columns, title=title)
    for row in rows:
        result.add_row(*cells(*row))
    return result


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
