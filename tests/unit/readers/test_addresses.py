"""The mailbox the sign-up limits count: one per person, however the address is spelled."""

from __future__ import annotations

import pytest

from digest.readers import mailbox_key


@pytest.mark.parametrize(("typed", "mailbox"), [
    ("Victim@Example.org", "victim@example.org"),
    ("victim+0@example.org", "victim@example.org"),
    ("victim+a+b@EXAMPLE.org", "victim@example.org"),
    ("jane.doe@example.org", "jane.doe@example.org"),  # dots matter at most providers
    ("Jane.Doe+news@gmail.com", "janedoe@gmail.com"),
    ("j.a.n.e.doe@googlemail.com", "janedoe@gmail.com"),
    ("+tag@example.org", "+tag@example.org"),  # nothing before the tag: the tag is the name
    (" not an address ", "not an address"),
])
def test_mailbox_key(typed: str, mailbox: str) -> None:
    assert mailbox_key(typed) == mailbox
