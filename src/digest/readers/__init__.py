"""Readers: who they are, what they consented to, what they take, and how they leave.

The only writer of `subscribers.status`, the consent ledger, the suppression list and the
newsletter subscriptions. Every change of consent writes a ConsentEvent; an unsubscribe is
announced to running send loops once it commits (digest.infra.departures).

- `addresses`: check and normalise an address, a name, topics
- `roster`: add one reader, import many (CSV)
- `lifecycle`: sign up, confirm, preferences, pause, leave, export, be forgotten
- `subscriptions`: which newsletters a reader takes
- `consent`: the ledger (GDPR Art. 7)
- `suppression`: addresses never to mail again; the hard-bounce and complaint rules
"""

from digest.readers.addresses import (
    InvalidReader,
    clean_name,
    clean_topics,
    email_hash,
    new_token,
    normalise_email,
)
from digest.readers.consent import CONSENT_TEXT, CONSENT_VERSION, RequestContext, record
from digest.readers.lifecycle import (
    PAUSE_MAX_WEEKS,
    UNSUBSCRIBES,
    confirm,
    erase,
    export_data,
    find_by_token,
    queue_notice,
    request_subscription,
    resume,
    unsubscribe,
    unsubscribe_by_token,
    update_preferences,
)
from digest.readers.roster import AlreadySubscribed, ImportReport, Suppressed, add_subscriber, import_csv
from digest.readers.subscriptions import (
    active_newsletters,
    set_subscriptions,
    subscribe_existing,
    subscribe_to_all,
    subscribed_ids,
    subscriber_counts,
)
from digest.readers.suppression import bounce_readers, complain, count_soft_bounce, is_suppressed, suppress

__all__ = [
    "CONSENT_TEXT", "CONSENT_VERSION", "PAUSE_MAX_WEEKS", "UNSUBSCRIBES", "AlreadySubscribed", "ImportReport",
    "InvalidReader", "RequestContext", "Suppressed", "active_newsletters", "add_subscriber", "bounce_readers",
    "clean_name", "clean_topics", "complain", "count_soft_bounce", "confirm", "email_hash", "erase", "export_data", "find_by_token",
    "import_csv", "is_suppressed", "new_token", "normalise_email", "queue_notice", "record",
    "request_subscription", "resume", "set_subscriptions", "subscribe_existing", "subscribe_to_all", "subscribed_ids", "subscriber_counts", "suppress",
    "unsubscribe", "unsubscribe_by_token", "update_preferences",
]
