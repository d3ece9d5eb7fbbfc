"""The store: one SQL database (SQLite embedded, PostgreSQL in production).

`models` is the one metadata for Alembic and for the hand-written SQL of the send path;
`engine` knows which database we talk to; `migrate` brings the schema to head. Which
module may write which table state is told in each domain package: this one only defines.
"""

from digest.store.bulk import CopyPlan, copy_plan, one_of, reserve_ids, write_rows
from digest.store.engine import get_engine, make_engine, session_factory, session_scope
from digest.store.migrate import current_and_head, is_initialised, upgrade
from digest.store import partitions
from digest.store.models import (
    ANY,
    FINAL_DELIVERY_STATUSES,
    MASTHEAD,
    AbTest,
    ApiToken,
    AuditEntry,
    Base,
    ClickCount,
    ClickHour,
    ClickFlush,
    ClickHistory,
    ClickHistoryConsent,
    ClickUnique,
    ConsentEvent,
    Delivery,
    DeliveryCompaction,
    DeliveryStatus,
    Edition,
    EditionCuration,
    EditionStatus,
    EditionStory,
    EditionTally,
    ErrorCode,
    Feed,
    FeedItem,
    Frequency,
    Newsletter,
    NewsletterSubscription,
    Notice,
    NoticeStatus,
    OpenCount,
    ReaderDeliverySummary,
    Role,
    NewEditions,
    StatusCode,
    Story,
    StoryStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    Suppression,
    User,
    UTCDateTime,
    WebSession,
    month_of,
    ts,
    utcnow,
    with_id_list,
)

__all__ = [
    "ANY", "partitions", "CopyPlan", "copy_plan", "FINAL_DELIVERY_STATUSES", "MASTHEAD", "AbTest", "ApiToken", "AuditEntry",
    "Base", "ClickCount", "ClickFlush", "ClickHistory", "ClickHistoryConsent", "ClickHour", "ClickUnique", "OpenCount",
    "ConsentEvent", "Delivery", "DeliveryCompaction", "DeliveryStatus",
    "Edition", "EditionCuration", "EditionStatus", "EditionStory", "EditionTally", "ErrorCode", "Feed", "FeedItem", "Frequency", "Newsletter",
    "NewEditions", "NewsletterSubscription", "Notice", "NoticeStatus", "ReaderDeliverySummary", "Role", "StatusCode", "Story", "StoryStatus", "Subscriber",
    "SubscriberStatus", "SubscriberTopic", "Suppression", "UTCDateTime", "User", "WebSession",
    "current_and_head", "get_engine", "is_initialised", "make_engine", "month_of", "session_factory", "session_scope",
    "one_of", "reserve_ids", "ts", "upgrade", "utcnow", "with_id_list", "write_rows",
]
