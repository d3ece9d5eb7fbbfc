"""What comes back after a send: bounces, complaints and mailed unsubscribes.

    DSN / ARF mail ─► maildir ─┐
    SES (SNS), SendGrid hooks ─┴► reports (parse: bytes or JSON → FeedbackEvent)
                                 ─► apply (find our message; bounce, soft-bounce, complain)
    mail to unsubscribe@ ───────► mailto (the token in the subject or address → unsubscribe)

Parsing never raises on hostile input; applying is idempotent. A report changes readers
through digest.readers and delivery rows through digest.delivery, never by itself.
"""

from digest.feedback.apply import (
    FEEDBACK,
    Applied,
    apply_event,
    apply_events,
    apply_report,
    process_bounce_maildir,
)
from digest.feedback.maildir import NotAMaildir, process_maildir
from digest.feedback.mailto import InboundResult, process_mailto_maildir, token_from_message, unsubscribe_by_mail
from digest.feedback.reports import (
    REPORT_MAX_BYTES,
    FeedbackEvent,
    events_from_message,
    events_from_sendgrid,
    events_from_ses,
)
from digest.feedback.signatures import (
    WEBHOOK_MAX_AGE_SECONDS,
    CertificateUnavailable,
    SignatureError,
    SnsCertificates,
    is_sns_url,
    verify_sendgrid,
    verify_sns,
)

__all__ = [
    "FEEDBACK", "WEBHOOK_MAX_AGE_SECONDS", "REPORT_MAX_BYTES", "Applied", "CertificateUnavailable", "FeedbackEvent", "InboundResult",
    "NotAMaildir", "SignatureError", "SnsCertificates", "apply_event", "apply_events", "apply_report",
    "events_from_message", "events_from_sendgrid", "events_from_ses", "is_sns_url", "process_bounce_maildir",
    "process_mailto_maildir", "process_maildir", "token_from_message", "unsubscribe_by_mail", "verify_sendgrid",
    "verify_sns",
]
