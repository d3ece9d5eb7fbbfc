"""DKIM signatures (dkimpy) on every message digest sends.

The signature covers the headers receivers and RFC 8058 care about, List-Unsubscribe and
List-Unsubscribe-Post included (without those in h=, mailbox providers do not offer one-click
unsubscribe). Signing happens in the transport, so digests, confirmations, welcomes and
tests are all signed.

dkimpy does everything DKIM: canonicalization, the body hash, the header list, the tag
list and its folding. Only its last step, the RSA private-key operation, is pure Python
(two 1,024-bit modular exponentiations: ~5.9 of the ~6.8 ms a 2048-bit signature costs here),
so that one function is handed to OpenSSL through `cryptography`: same PKCS #1 v1.5
signature, byte for byte (it is deterministic; a test compares the two), in ~0.7 ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

SIGNED_HEADERS = (
    b"from", b"reply-to", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"feedback-id", b"mime-version", b"content-type",
)


# Each listed once more than it occurs (digest writes each once): h= then names a copy that
# is not there, so a second Subject, From or List-Unsubscribe added above ours (which a mail
# client would show) makes the signature fail instead of riding on it (RFC 6376 §8.15).
OVERSIGNED_HEADERS = [name for name in SIGNED_HEADERS for _ in range(2)]


class DkimError(ValueError):
    pass


_PURE_PYTHON_RSA_SIGN = dkim.RSASSA_PKCS1_v1_5_sign
_HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
_keys: dict[int, rsa.RSAPrivateKey] = {}  # by modulus: dkimpy parses the PEM per signature


def openssl_rsassa_sign(hash_: Any, private_key: dict[str, int]) -> bytes:
    """dkimpy's RSASSA-PKCS1-v1_5 signing step (its `RSASSA_PKCS1_v1_5_sign`), by OpenSSL."""
    algorithm = _HASHES.get(hash_.name.lower())
    if algorithm is None:
        return _PURE_PYTHON_RSA_SIGN(hash_, private_key)  # type: ignore[no-any-return]
    key = _keys.get(private_key["modulus"])
    if key is None:
        public = rsa.RSAPublicNumbers(private_key["publicExponent"], private_key["modulus"])
        key = _keys[private_key["modulus"]] = rsa.RSAPrivateNumbers(
            p=private_key["prime1"], q=private_key["prime2"], d=private_key["privateExponent"],
            dmp1=private_key["exponent1"], dmq1=private_key["exponent2"], iqmp=private_key["coefficient"],
            public_numbers=public).private_key()
    return key.sign(hash_.digest(), padding.PKCS1v15(), Prehashed(algorithm()))


# dkimpy calls the function by this module-level name (dkim/__init__.py imports it from
# dkim.crypto), so replacing it there is the whole change.
dkim.RSASSA_PKCS1_v1_5_sign = openssl_rsassa_sign


@dataclass(frozen=True)
class DkimSigner:
    selector: str
    domain: str
    private_key: bytes

    @classmethod
    def from_file(cls, selector: str, domain: str, path: Path) -> DkimSigner:
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise DkimError(f"cannot read the DKIM key {path}: {exc.strerror}") from None
        signer = cls(selector, domain, key)
        signer.sign(b"From: check@" + domain.encode() + b"\r\nSubject: key check\r\n\r\nok\r\n")
        return signer

    def sign(self, message: bytes) -> bytes:
        try:
            signature = dkim.sign(message, self.selector.encode(), self.domain.encode(), self.private_key,
                                  canonicalize=(b"relaxed", b"relaxed"), include_headers=OVERSIGNED_HEADERS)
        except (dkim.DKIMException, ValueError) as exc:  # ValueError: numbers OpenSSL refuses as a key
            raise DkimError(f"DKIM signing failed: {exc}") from None
        return signature + message


class SigningConnection:
    def __init__(self, inner: Any, signer: DkimSigner) -> None:
        self.inner = inner
        self.signer = signer

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        self.inner.send(envelope_from, recipient, self.signer.sign(message))


@dataclass
class SigningTransport:
    inner: Any
    signer: DkimSigner

    @contextmanager
    def connect(self) -> Iterator[SigningConnection]:
        with self.inner.connect() as connection:
            yield SigningConnection(connection, self.signer)
