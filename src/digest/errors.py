"""Errors by class: what went wrong decides the HTTP status and the CLI exit, never the text.

Every error a person can cause is a `DigestError`: `NotFound` (the thing named does not
exist), `Invalid` (the input cannot be used as given) or `Conflict` (the input is fine but
the thing is in a state that refuses it: an edition already sending, a slug taken). Each
carries a `code`, a short stable word a program can act on; the message is for people.
Domain packages subclass these (`ParseError(Invalid)`, `LifecycleError(Conflict)`) so a
caller can be as precise as it likes and the entry points need to know only the three.
"""

from __future__ import annotations


class DigestError(Exception):
    """Anything a request or a command did wrong; the message says what, in words."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFound(DigestError, LookupError):
    """The edition, story, reader, newsletter or token named does not exist."""

    default_code = "not_found"


class Invalid(DigestError, ValueError):
    """Input that cannot be used as given: a bad address, date, zone, cron or subject."""

    default_code = "invalid"


class Unprocessable(Invalid):
    """Well-formed input a rule refuses (a colour with too little contrast): the API's 422,
    with the field named, as for a value of the wrong type."""

    default_code = "unprocessable"


class Conflict(DigestError):
    """Valid input refused by the current state: a frozen edition, a slug already taken."""

    default_code = "conflict"


# What each class means at the edges. Subclasses inherit their parent's entry.
HTTP_STATUS = {NotFound: 404, Invalid: 400, Unprocessable: 422, Conflict: 409}
CLI_EXIT = {NotFound: 1, Invalid: 1, Conflict: 1}


def http_status(error: DigestError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400


def cli_exit(error: DigestError) -> int:
    for cls in type(error).__mro__:
        if cls in CLI_EXIT:
            return CLI_EXIT[cls]
    return 1
