"""Provider webhook signatures, checked with `cryptography`.

- Amazon SNS (carrying SES notifications): RSA PKCS#1 v1.5 over a canonical string of the
  message's fields, SHA1 for SignatureVersion 1 and SHA256 for 2, with the certificate at
  SigningCertURL. That URL must be https on an SNS host, so a sender cannot point us at a
  certificate of their own; certificates are fetched once per URL and kept.
- SendGrid's Signed Event Webhook: ECDSA P-256 with SHA256 over timestamp + raw body, the
  public key configured ahead (DIGEST_SENDGRID_PUBLIC_KEY).

A valid SNS signature proves only that *some* SNS topic sent the message: the hook also
checks the TopicArn against DIGEST_SES_TOPIC_ARNS.

A signature never expires, so a signed message is only taken while it is fresh: stamped
(SNS `Timestamp`, SendGrid's timestamp header, both signed) at most
WEBHOOK_MAX_AGE_SECONDS before or after our clock. Both providers retry within minutes,
each retry stamped anew by SendGrid; a message replayed later is refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from digest.infra import FetchError, fetch

SNS_HOST_RE = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
SNS_CERT_MAX_BYTES = 64 * 1024
SNS_CERT_CACHE_ENTRIES = 32
SNS_FETCH_TIMEOUT_SECONDS = 5.0
SIGNATURE_MAX_CHARS = 4096
WEBHOOK_MAX_AGE_SECONDS = 10 * 60
# The fields each message type signs, in the order they are signed (AWS SNS docs,
# "Verifying the signatures of Amazon SNS messages"). Subject only when present.
SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SNS_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

Fetcher = Callable[[str], bytes]


class SignatureError(Exception):
    """Unsigned, badly signed, or signed with a certificate we may not trust: refuse (403)."""


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched: a fault on our side, retry later (503)."""


def is_sns_url(url: object) -> bool:
    """An https URL on an SNS host, with no user, port or other host smuggled in."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    parts = urlsplit(url)
    return (parts.scheme == "https" and parts.hostname is not None and parts.netloc == parts.hostname
            and SNS_HOST_RE.fullmatch(parts.hostname) is not None)


def fetch_https(url: str) -> bytes:
    """GET an SNS URL (TLS verified, no redirects: one could leave the SNS host; bounded
    size and time; public addresses only, like every fetch)."""
    try:
        return fetch(url, max_bytes=SNS_CERT_MAX_BYTES, deadline_seconds=SNS_FETCH_TIMEOUT_SECONDS,
                     max_redirects=0).body
    except FetchError as exc:
        raise CertificateUnavailable(str(exc)) from None


class SnsCertificates:
    """SNS signing certificates by URL, fetched once through `fetch` (injectable: the one
    network call verification makes) and kept, least recently used dropped first."""

    def __init__(self, fetch: Fetcher = fetch_https, max_entries: int = SNS_CERT_CACHE_ENTRIES) -> None:
        self.fetch = fetch
        self.max_entries = max_entries
        self._certificates: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._lock = threading.Lock()

    def public_key(self, url: str, now: datetime | None = None) -> rsa.RSAPublicKey:
        if not is_sns_url(url) or not urlsplit(url).path.endswith(".pem"):
            raise SignatureError("SigningCertURL is not an https .pem URL on an SNS host")
        with self._lock:
            certificate = self._certificates.get(url)
            if certificate is not None:
                self._certificates.move_to_end(url)
        if certificate is None:
            try:
                certificate = x509.load_pem_x509_certificate(self.fetch(url))
            except ValueError:
                raise SignatureError("the signing certificate is not a PEM certificate") from None
            with self._lock:
                self._certificates[url] = certificate
                while len(self._certificates) > self.max_entries:
                    self._certificates.popitem(last=False)
        now = now or datetime.now(UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureError("the signing certificate is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("the signing certificate does not hold an RSA key")
        return key


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    fields = SNS_SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SignatureError("unknown SNS message Type")
    lines = []
    for name in fields:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise SignatureError(f"SNS message without a {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify_sns(message: Mapping[str, Any], certificates: SnsCertificates, now: datetime | None = None) -> None:
    """Return if `message` (the parsed SNS JSON) is signed by SNS and fresh; SignatureError
    if not, CertificateUnavailable if the certificate could not be fetched."""
    algorithm = SNS_HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SignatureError("SignatureVersion must be 1 or 2")
    try:
        stamped = datetime.fromisoformat(str(message.get("Timestamp")))
    except ValueError:
        raise SignatureError("missing or malformed Timestamp") from None
    if stamped.tzinfo is None:
        raise SignatureError("the Timestamp has no time zone")
    check_fresh(stamped.timestamp(), now)
    signature = _b64(message.get("Signature"))
    string_to_sign = sns_string_to_sign(message)
    key = certificates.public_key(str(message.get("SigningCertURL") or ""))
    try:
        key.verify(signature, string_to_sign, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SignatureError("the SNS signature does not match") from None


def verify_sendgrid(key: ec.EllipticCurvePublicKey, signature: str | None, timestamp: str | None,
                    body: bytes, now: datetime | None = None) -> None:
    """Return if SendGrid signed timestamp + body, and the timestamp is fresh; SignatureError if not."""
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 20:
        raise SignatureError("missing or malformed X-Twilio-Email-Event-Webhook-Timestamp")
    check_fresh(float(timestamp), now)
    try:
        key.verify(_b64(signature), timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureError("the SendGrid signature does not match") from None


def check_fresh(stamped: float, now: datetime | None = None) -> None:
    """SignatureError unless `stamped` (seconds since the epoch) is within
    WEBHOOK_MAX_AGE_SECONDS of `now` (default: the clock)."""
    age = (now or datetime.now(UTC)).timestamp() - stamped
    if abs(age) > WEBHOOK_MAX_AGE_SECONDS:
        when = f"{int(age)} s ago" if age > 0 else f"{int(-age)} s ahead of our clock"
        raise SignatureError(f"stamped {when}; at most {WEBHOOK_MAX_AGE_SECONDS} s either way is accepted")


def _b64(value: object) -> bytes:
    if not isinstance(value, str) or not value or len(value) > SIGNATURE_MAX_CHARS:
        raise SignatureError("missing signature")
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise SignatureError("the signature is not base64") from None
