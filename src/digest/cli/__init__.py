"""The `digest` command line: one module per resource, each command a call to digest.actions
(changes) or a read through the domain packages, printed through one table helper."""

from digest.cli.app import app, main

__all__ = ["app", "main"]
