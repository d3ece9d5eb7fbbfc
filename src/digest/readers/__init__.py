"""Readers: who they are, what they consented to, what they take, and how they leave.

The only writer of `subscribers.status`, the consent ledger, the suppression list and the
newsletter subscriptions. Every change of consent writes a ConsentEvent; an unsubscribe is
announced to running send loops once it commits (digest.infra.departures).

- `addresses`: check and normalise an address, a name, topics; the mailbox the limits count
- `roster`: add one reader, import many (digest's CSV or another service's export)
- `formats`: other services' subscriber exports (Mailchimp, Substack, Ghost, listmonk, beehiiv)
- `lifecycle`: sign up, confirm, preferences, pause, leave, export, be forgotten
- `subscriptions`: which newsletters a reader takes
- `consent`: the ledger (GDPR Art. 7)
- `click_history`: a reader's remembered clicks, only where a newsletter offers it and they said yes
- `suppression`: addresses never to mail again; the hard-bounce and complaint rules
- `directory`: search and filter the list, one reader's history, the CSV export (reads only)
- `on_behalf`: what staff change for a reader (topics, newsletters, a fresh confirmation)
"""

from digest.readers.addresses import (
    InvalidReader,
    clean_name,
    clean_topics,
    email_hash,
    mailbox_key,
    new_token,
    normalise_email,
)
from digest.readers.click_history import (
    CLICK_HISTORY_TEXT,
    HistoryChoice,
    RememberedClick,
    counting_opens,
    history_choices,
    remember_clicks,
)
from digest.readers.consent import CONSENT_TEXT, CONSENT_VERSION, RequestContext, record
from digest.readers.directory import (
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    MOVING_COLUMNS,
    READERS_PAGE_MAX,
    DeliveryLine,
    FeedbackLine,
    ReaderFilter,
    ReaderHistory,
    ReaderNotFound,
    count_readers,
    export_csv,
    export_lines,
    get_reader,
    newsletters_of,
    reader_history,
    search_readers,
)
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
from digest.readers.on_behalf import (
    CONFIRM_RESEND_COOLDOWN_SECONDS,
    NotPending,
    ReaderErased,
    change_newsletters,
    change_topics,
    last_confirmation_failed,
    require_present,
    resend_confirmation,
)
from digest.readers.formats import DEPARTED, IMPORT_STATUSES, SERVICES, count_csv_rows, detect_file_service
from digest.readers.read_aside import ReaderLost
from digest.readers.roster import (
    CSV_UPLOAD_MAX_BYTES,
    AlreadySubscribed,
    ImportOptions,
    ImportReport,
    Suppressed,
    add_subscriber,
    import_csv,
    import_file,
)
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
    "CLICK_HISTORY_TEXT", "HistoryChoice", "RememberedClick", "counting_opens", "history_choices", "remember_clicks",
    "CONFIRM_RESEND_COOLDOWN_SECONDS", "CSV_UPLOAD_MAX_BYTES", "DEPARTED", "IMPORT_STATUSES", "SERVICES",
    "ImportOptions", "detect_file_service", "import_file", "EXPORT_FORMATS", "MOVING_COLUMNS", "export_lines", "CONSENT_TEXT", "CONSENT_VERSION", "EXPORT_COLUMNS", "PAUSE_MAX_WEEKS",
    "READERS_PAGE_MAX", "UNSUBSCRIBES", "AlreadySubscribed", "DeliveryLine", "FeedbackLine", "ImportReport",
    "InvalidReader", "NotPending", "ReaderErased", "ReaderLost", "ReaderFilter", "ReaderHistory", "ReaderNotFound",
    "RequestContext", "Suppressed", "active_newsletters", "add_subscriber", "bounce_readers",
    "change_newsletters", "change_topics", "clean_name", "clean_topics", "complain", "confirm", "count_csv_rows",
    "count_readers", "count_soft_bounce", "email_hash", "erase", "export_csv", "export_data", "find_by_token",
    "get_reader", "import_csv", "is_suppressed", "last_confirmation_failed", "mailbox_key", "new_token", "newsletters_of", "normalise_email", "queue_notice",
    "reader_history", "record", "request_subscription", "require_present", "resend_confirmation", "resume",
    "search_readers", "set_subscriptions", "subscribe_existing", "subscribe_to_all", "subscribed_ids",
    "subscriber_counts", "suppress", "unsubscribe",
    "unsubscribe_by_token", "update_preferences",
]
