"""DKIM: messages from the real send path carry a signature dkimpy verifies against the
published key, covering the headers one-click unsubscribe depends on."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import Settings
from digest.delivery.pipeline import release_due
from digest.delivery.sender import send_batch
from digest.mail.dkim import DkimError, DkimSigner, SigningTransport
from digest.mail.transport import RecordingTransport, make_transport
from digest.store.models import utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories

pytestmark = pytest.mark.integration


def _key(tmp_path: Path) -> tuple[Path, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_sent_digests_are_signed_and_verify(factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key_path, record = _key(tmp_path)
    settings = Settings(env="test", secret_key="dkim-test-secret-0123456789", smtp_url=f"outbox://{tmp_path}/out",
                        dkim_selector="digest2026", dkim_private_key_file=key_path)
    signing = make_transport(settings)
    assert isinstance(signing, SigningTransport)
    recording = RecordingTransport()
    signing.inner = recording  # the real signer, recording instead of writing files
    seed_stories(factory)
    seed_readers(factory, 5)
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 100, lambda *a: batches.append(a))
    send_batch(factory, *batches[0], signing, settings)
    assert len(recording.sent) == 5

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"digest2026._domainkey.news.example.com."
        return record

    for _, _, raw in recording.sent:
        assert dkim.verify(raw, dnsfunc=dns)
        header = email.message_from_bytes(raw, policy=email.policy.compat32)["DKIM-Signature"]
        signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", " ".join(header.split())).group(1).split(":")}
        assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
        # Any change to a signed header breaks it.
        tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                               b"List-Unsubscribe-Post: List-Unsubscribe=Two-Click")
        assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_missing_or_bad_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DkimError, match="cannot read"):
        DkimSigner.from_file("s", "news.example.com", tmp_path / "nope.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(DkimError, match="signing failed"):
        DkimSigner.from_file("s", "news.example.com", bad)
