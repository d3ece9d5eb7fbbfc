"""The RSA step of DKIM signing, handed from dkimpy's pure Python to OpenSSL, gives the
same signature byte for byte, and dkimpy's own verifier accepts what it signs."""

from __future__ import annotations

import base64
import hashlib

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.mail.dkim import _PURE_PYTHON_RSA_SIGN, DkimSigner, openssl_rsassa_sign


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
@pytest.mark.parametrize("data", [b"", b"x", b"a header block\r\n" * 40])
def test_openssl_signs_exactly_as_dkimpy_does(key_pem: bytes, algorithm: str, data: bytes) -> None:
    private_key = dkim.parse_pem_private_key(key_pem)
    ours = openssl_rsassa_sign(hashlib.new(algorithm, data), private_key)
    theirs = _PURE_PYTHON_RSA_SIGN(hashlib.new(algorithm, data), private_key)
    assert ours == theirs and len(ours) == 256


def test_dkimpy_verifies_a_message_signed_through_openssl(key_pem: bytes) -> None:
    assert dkim.RSASSA_PKCS1_v1_5_sign is openssl_rsassa_sign  # the replacement is in place
    public_der = serialization.load_pem_private_key(key_pem, None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    message = (b"From: Desk <digest@news.example.com>\r\nTo: reader@example.org\r\nSubject: Today\r\n"
               b"Date: Wed, 25 Nov 2026 07:00:00 +0000\r\nMessage-ID: <1.2@news.example.com>\r\n"
               b"List-Unsubscribe: <https://news.example.com/u/t>\r\n"
               b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nThe stories.\r\n")
    signed = DkimSigner("s2026", "news.example.com", key_pem).sign(message)
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record if name == b"s2026._domainkey.news.example.com." else None)
    assert not dkim.verify(signed.replace(b"The stories.", b"Other stories."),
                           dnsfunc=lambda name, timeout=5: record)


@pytest.mark.parametrize("added", [b"Subject: URGENT: verify your account\r\n", b"From: Bank <help@bank.example>\r\n",
                                   b"List-Unsubscribe: <https://evil.example/u>\r\n", b"To: someone@else.example\r\n"])
def test_a_header_added_above_ours_breaks_the_signature(key_pem: bytes, added: bytes) -> None:
    public_der = serialization.load_pem_private_key(key_pem, None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    message = (b"From: Desk <digest@news.example.com>\r\nTo: reader@example.org\r\nSubject: Today\r\n"
               b"List-Unsubscribe: <https://news.example.com/u/t>\r\n\r\nThe stories.\r\n")
    signed = DkimSigner("s2026", "news.example.com", key_pem).sign(message)
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)
    signature, _, rest = signed.partition(b"\r\nFrom: ")
    tampered = signature + b"\r\n" + added + b"From: " + rest
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record)
