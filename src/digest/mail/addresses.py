"""Email addresses as digest keeps them: checked for syntax only (email-validator, no DNS at
request time), normalised, and with a lower-cased key for case-insensitive uniqueness."""

from __future__ import annotations

import functools
import sys

from email_validator import EmailNotValidError, validate_email

from digest.errors import Invalid

DOMAIN_CACHE_SIZE = 4096


def _cache_domain_checks() -> bool:
    """Remember email-validator's check of each domain name.

    Checking an address's domain (IDNA, UTS #46, each character's class) is two thirds of
    validate_email's time, and a list of a million readers has a few thousand domains: a
    million-row import spends ~20 s of CPU checking gmail.com again. The check is a pure
    function of the domain and two flags; a bad domain raises, and an exception is never
    cached, so an address is judged exactly as before. If a later email-validator names
    its step otherwise, nothing is cached and nothing else changes (a unit test notices)."""
    module = sys.modules.get("email_validator.validate_email")
    step = getattr(module, "validate_email_domain_name", None)
    if step is None or hasattr(step, "cache_info"):
        return step is not None
    module.validate_email_domain_name = functools.lru_cache(maxsize=DOMAIN_CACHE_SIZE)(step)  # type: ignore[union-attr]
    return True


DOMAIN_CHECKS_CACHED = _cache_domain_checks()


class InvalidAddress(Invalid):
    """Not an address we can send to; the message says why."""


def normalise_address(raw: str) -> tuple[str, str]:
    """(normalised address, case-insensitive key) or InvalidAddress."""
    if not isinstance(raw, str) or any(c in raw for c in "\r\n\x00"):
        raise InvalidAddress("email address must be a single line")
    try:
        # No SMTPUTF8: the message builders and the SMTP client write addresses in ASCII,
        # so a non-ASCII local part is refused and the domain kept in its IDNA form
        # (`normalized` turns even "a@xn--…" into Unicode).
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid email address {raw.strip()[:80]!r}: {exc}") from None
    address = result.ascii_email or result.normalized
    return address, address.lower()
