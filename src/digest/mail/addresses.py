"""Email addresses as digest keeps them: checked for syntax only (email-validator, no DNS at
request time), normalised, and with a lower-cased key for case-insensitive uniqueness."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from digest.errors import Invalid


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
