"""The headers every copy of one edition shares: From, Reply-To, Subject, List-Id, Feedback-ID."""

from __future__ import annotations

from digest.config import Settings
from digest.mail.message import MessageHeaders
from digest.mail.render import EditionView


def shared_headers(view: EditionView, subject: str, settings: Settings) -> MessageHeaders:
    """From, List-Id and Feedback-ID follow the edition's newsletter when it has one."""
    sender, list_id, campaign = settings.sender, settings.list_id, "edition"
    if view.sender_name:
        # Quoted, not RFC 2047-encoded here: MessageHeaders parses the name back and
        # encode_address encodes and folds it once (an encoded-word made here stayed one
        # unfolded word, a From line over 998 octets for a long non-ASCII name).
        quoted = view.sender_name.replace("\\", "\\\\").replace('"', '\\"')
        sender = f'"{quoted}" <{settings.sender_address}>'
    if view.newsletter_slug:
        list_domain = settings.list_id.rsplit("<", 1)[-1].rstrip(">").strip() or settings.sender_domain
        list_id = f"{view.newsletter} <{view.newsletter_slug}.{list_domain}>"
        campaign = view.newsletter_slug
    return MessageHeaders(
        sender=sender,
        subject=subject,
        list_id=list_id,
        feedback_id=f"{view.id}:digest:{campaign}:{settings.feedback_id_sender}",
        unsubscribe_mailto=settings.list_unsubscribe_mailto,
        reply_to=view.brand.reply_to or "",
    )
