"""Addresses: email-validator's domain check remembered per domain, judging every address
exactly as the uncached check does."""

from __future__ import annotations

import sys

import pytest

from digest.mail import InvalidAddress, normalise_address
from digest.mail.addresses import DOMAIN_CHECKS_CACHED

step = sys.modules["email_validator.validate_email"].validate_email_domain_name


def test_the_domain_check_is_remembered() -> None:
    assert DOMAIN_CHECKS_CACHED and hasattr(step, "cache_info")
    step.cache_clear()

    for n in range(50):
        normalise_address(f"reader{n}@News.Example.ORG")

    info = step.cache_info()
    assert (info.misses, info.hits) == (1, 49)


@pytest.mark.parametrize("raw", ["Ann@Bücher.example", "ann@xn--bcher-kva.example", "Postmaster@example.org",
                                 "a.b+tag@sub.domain.example.com"])
def test_a_remembered_domain_gives_the_same_address(raw: str) -> None:
    step.cache_clear()
    first = normalise_address(raw)
    again = normalise_address(raw)  # the domain's check from the cache
    assert first == again
    uncached = step.__wrapped__(raw.rpartition("@")[2], test_environment=False, globally_deliverable=True)
    assert first[0].endswith("@" + uncached["ascii_domain"])


@pytest.mark.parametrize("raw", ["ann@-bad-.example", "ann@example..org", "ann@localhost", "ann@exa mple.org"])
def test_a_bad_domain_is_refused_every_time(raw: str) -> None:
    step.cache_clear()
    for _ in range(2):  # an exception is never cached: the second address is checked again
        with pytest.raises(InvalidAddress):
            normalise_address(raw)
