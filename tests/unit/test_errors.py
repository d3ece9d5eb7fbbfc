"""Errors by class: the HTTP status and the CLI exit come from what an error is, never from
its words; the domain's errors each land on one of the three."""

from __future__ import annotations

import pytest

from digest.editions import EditionFrozen, EditionNotFound, InvalidEdition, LifecycleError, SlugTaken
from digest.errors import Conflict, DigestError, Invalid, NotFound, cli_exit, http_status
from digest.feedback import NotAMaildir
from digest.readers import AlreadySubscribed, InvalidReader, Suppressed
from digest.staff import AccountError, AccountExists
from digest.stories import ParseError


@pytest.mark.parametrize(("error", "status"), [
    (NotFound("no edition with id 9"), 404), (EditionNotFound("x"), 404), (NotAMaildir("x"), 404),
    (Invalid("x"), 400), (InvalidEdition("x"), 400), (InvalidReader("x"), 400), (ParseError("x"), 400),
    (AccountError("x"), 400),
    (Conflict("x"), 409), (LifecycleError("x"), 409), (EditionFrozen("x"), 409), (AlreadySubscribed("x"), 409),
    (Suppressed("x"), 409), (SlugTaken("x"), 409), (AccountExists("x"), 409),
])
def test_the_status_is_chosen_by_class(error: DigestError, status: int) -> None:
    assert http_status(error) == status
    assert cli_exit(error) == 1


def test_the_words_do_not_decide() -> None:
    # "no …" once meant 404 whatever the error was; now only NotFound does.
    assert http_status(Invalid("no such thing as a negative window")) == 400
    assert http_status(NotFound("gone")) == 404


def test_codes_are_stable_words() -> None:
    assert (NotFound("x").code, Invalid("x").code, Conflict("x").code) == ("not_found", "invalid", "conflict")
    assert EditionNotFound("x").code == "edition_not_found"
    assert Invalid("x", code="bad_zone").code == "bad_zone"
