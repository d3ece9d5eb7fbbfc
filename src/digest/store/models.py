"""The ledger: subscribers, stories, editions and one delivery row per (edition, reader).

Enums are stored by value as short strings so that SQL written by hand (set-based
planning, conditional status flips) reads the same as the Python.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    JSON,
    BigInteger,
    BindParameter,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TextClause,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only autoincrements a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL and on SQLite (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts(name: str) -> BindParameter[datetime]:
    """A bind parameter for raw SQL that stores datetimes exactly as the ORM columns do."""
    return bindparam(name, type_=UTCDateTime())


def with_id_list(sql: str, *binds: BindParameter[Any]) -> dict[str, TextClause]:
    """`sql` with `IN_IDS` standing for "is one of the list :ids", per dialect name.

    PostgreSQL gets `= ANY(:ids)`, one array parameter: the statement's text, psycopg's
    parse of it and the server's plan stay the same whatever the list's length (an
    expanding IN is rendered and parsed again on every call, ~1.4 ms for 500 ids).
    SQLite, which has no arrays, gets an expanding `IN :ids`."""
    return {
        "postgresql": text(sql.replace("IN_IDS", "= ANY(:ids)")).bindparams(
            bindparam("ids", type_=ARRAY(BigInteger)), *binds),
        "sqlite": text(sql.replace("IN_IDS", "IN :ids")).bindparams(bindparam("ids", expanding=True), *binds),
    }


def _enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        length=length,
    )


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Frequency(enum.StrEnum):
    EVERY = "every"  # every digest
    WEEKLY = "weekly"  # at most one digest in any 7 days


class StoryStatus(enum.StrEnum):
    PUBLISHED = "published"
    RETRACTED = "retracted"


class EditionStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    # Not sent on purpose: missed by too much while workers were down, or too thin.
    SKIPPED = "skipped"


class NewEditions(enum.StrEnum):
    """What a newsletter's schedule makes: editions that go by themselves, or drafts."""

    SCHEDULED = "scheduled"
    DRAFT = "draft"


class StatusCode(enum.StrEnum):
    """Why an edition is in its state, for programs; `status_reason` holds the words."""

    CANCELLED = "cancelled"
    PAUSED = "paused"
    AUTO_PAUSED = "auto_paused"
    TOO_THIN = "too_thin"
    NO_READERS = "no_readers"
    MISSED = "missed"
    RETRYING_FAILED = "retrying_failed"
    SENDING_MISSING = "sending_missing"
    # Held back as a draft because its newsletter was paused; resuming schedules it again.
    NEWSLETTER_PAUSED = "newsletter_paused"
    NEWSLETTER_ARCHIVED = "newsletter_archived"
    # Its occurrence left the newsletter's schedule when the schedule was changed.
    SCHEDULE_CHANGED = "schedule_changed"


class ErrorCode(enum.StrEnum):
    """Why a delivery or notice did not (or not yet) reach its reader; `last_error` holds
    the words (an SMTP reply, a report's diagnostic)."""

    EDITION_CANCELLED = "edition_cancelled"
    READER_LEFT = "reader_left"
    SUPPRESSED = "suppressed"
    NOTHING_NEW = "nothing_new"
    TRANSIENT = "transient"  # a 4xx or a dropped connection: retried with backoff
    HARD_BOUNCE = "hard_bounce"  # a 5xx for the recipient, or a bounce report
    SOFT_BOUNCE = "soft_bounce"  # a report of a temporary failure after the 250


class Role(enum.StrEnum):
    EDITOR = "editor"
    OPS = "ops"
    ADMIN = "admin"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"


FINAL_DELIVERY_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.SKIPPED,
)


class Base(DeclarativeBase):
    pass


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # `email` keeps the normalised form shown to the reader; `email_key` is its
    # lower-cased twin that carries the case-insensitive uniqueness.
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.PENDING, index=True
    )
    # Opaque, 256 bits from `secrets`; the key to every per-reader link.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    consent_source: Mapped[str | None] = mapped_column(String(200))
    unsubscribe_channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    frequency: Mapped[Frequency] = mapped_column(_enum(Frequency), default=Frequency.EVERY)
    # No digest until then ("pause for N weeks").
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the reader asked to be forgotten: address, name and topics are gone.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # IANA zone for editions delivered at local time; None: the edition's own zone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Soft bounces reported for this reader (one per delivery); suppressed at the limit.
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    topic_rows: Mapped[list[SubscriberTopic]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="SubscriberTopic.topic"
    )

    @property
    def topics(self) -> list[str]:
        return [row.topic for row in self.topic_rows]


class SubscriberTopic(Base):
    """One row per (reader, topic): lets planning filter readers by topic in plain SQL."""

    __tablename__ = "subscriber_topics"

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str | None] = mapped_column(String(2048))
    # The image's size in pixels as its source gave it (feed media attributes, og:image:width
    # and height): the email's <img> gets a height only when both are known.
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[StoryStatus] = mapped_column(_enum(StoryStatus), default=StoryStatus.PUBLISHED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Edition(Base):
    __tablename__ = "editions"
    __table_args__ = (
        # One edition per schedule occurrence, however many beat processes race to make it.
        UniqueConstraint("newsletter_id", "occurrence_at", name="uq_edition_occurrence"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    newsletter_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("newsletters.id", ondelete="SET NULL"), index=True
    )
    occurrence_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Made by its newsletter's story trigger, not its cron (digest.editions.triggers).
    story_triggered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    note: Mapped[str | None] = mapped_column(Text)  # the editor's note at the top
    # Delivery at each reader's local time: "HH:MM" on `local_date` in the reader's zone
    # (`local_zone` for readers without one). None: everyone at send_at.
    local_time: Mapped[str | None] = mapped_column(String(5))
    local_date: Mapped[str | None] = mapped_column(String(10))
    local_zone: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    send_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # None: every topic. Otherwise readers and stories must share one of these.
    topics: Mapped[list[str] | None] = mapped_column(JSON)
    max_stories: Mapped[int] = mapped_column(Integer, default=5)
    window_hours: Mapped[int] = mapped_column(Integer, default=48)
    status: Mapped[EditionStatus] = mapped_column(
        _enum(EditionStatus), default=EditionStatus.DRAFT, index=True
    )
    # Why an edition was cancelled, paused or skipped, in words ops can act on.
    status_reason: Mapped[str | None] = mapped_column(String(500))
    status_code: Mapped[StatusCode | None] = mapped_column(_enum(StatusCode, 32))
    planned_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When send_batch tasks were last enqueued; the sweeper re-enqueues after a lease.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    story_rows: Mapped[list[EditionStory]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="EditionStory.position"
    )
    newsletter: Mapped[Newsletter | None] = relationship(lazy="joined")


class AbTest(Base):
    """An edition's subject A/B test: `share` % of its readers, half with the subject
    (variant 1) and half with `alternative` (variant 2); `wait_minutes` after release the
    subject with the higher unique human click rate goes to the rest. The numbers the
    decision saw are kept beside it. Written only by digest.editions.ab."""

    __tablename__ = "ab_tests"

    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    alternative: Mapped[str] = mapped_column(String(300))
    share: Mapped[int] = mapped_column(Integer)  # percent of the audience in the test
    wait_minutes: Mapped[int] = mapped_column(Integer)
    # Set at release: how many readers got each subject in the test, and when to decide.
    test_size: Mapped[int] = mapped_column(Integer, default=0)
    decide_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner_variant: Mapped[int | None] = mapped_column(Integer)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(500))
    # What the decision saw, per variant: copies sent, human clicks, unique human clicks.
    sent_1: Mapped[int] = mapped_column(Integer, default=0)
    sent_2: Mapped[int] = mapped_column(Integer, default=0)
    clicks_1: Mapped[int] = mapped_column(Integer, default=0)
    clicks_2: Mapped[int] = mapped_column(Integer, default=0)
    unique_1: Mapped[int] = mapped_column(Integer, default=0)
    unique_2: Mapped[int] = mapped_column(Integer, default=0)


class EditionTally(Base):
    """A sent edition's deliveries by status, counted once when it finished (the same
    transaction), so that dashboards and /metrics do not count its rows again on every look.
    Kept true after: a bounce moves one from sent to bounced here too; reopening the edition
    (retry failed, send to the missing) drops it and the rows are counted live until it
    finishes again. Written only by digest.editions.tallies."""

    __tablename__ = "edition_tallies"

    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EditionStory(Base):
    """The frozen, ordered list of stories an edition carries, written once at planning."""

    __tablename__ = "edition_stories"

    edition_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    story_id: Mapped[int] = mapped_column(BigId, ForeignKey("stories.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    # Set when a send-time check took the story out (retracted after planning).
    pulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pulled_reason: Mapped[str | None] = mapped_column(String(200))

    story: Mapped[Story] = relationship(lazy="joined")


class Delivery(Base):
    """One edition to one reader: the dedupe key, the retry list and the bounce target."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # planned_month is the same for every row of an edition (one INSERT plans them all),
        # so with it the constraint still says one row per edition and reader; PostgreSQL
        # partitions deliveries by it and wants it in every unique index.
        UniqueConstraint("edition_id", "subscriber_id", "planned_month", name="uq_delivery_edition_subscriber"),
        Index("ix_deliveries_edition_status", "edition_id", "status"),
        Index("ix_deliveries_subscriber_sent", "subscriber_id", "sent_at"),
        Index("ix_deliveries_edition_attempted", "edition_id", "attempted_at"),
        Index("ix_deliveries_queued_edition_id", "edition_id", "id",
              postgresql_where=text("status = 'queued'"), sqlite_where=text("status = 'queued'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscribers.id"))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[ErrorCode | None] = mapped_column(_enum(ErrorCode, 32))
    # A worker holds a queued delivery until lease_until; after that another may take it.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Earliest time of the next try after a transient failure.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the last try happened (sent, bounced or failed): send rates and auto-pause.
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The stories this reader's copy carried: the per-reader dedupe history.
    story_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # The subject this copy carried: 0 the edition's own (no test), 1 the first subject of a
    # subject test, 2 its alternative. None: held in the database until the test is decided
    # (the claim never takes such a row; digest.editions.ab).
    variant: Mapped[int | None] = mapped_column(Integer, default=0, server_default=text("0"))
    # The first day (UTC) of the month the edition was planned in: the partition key on
    # PostgreSQL and the unit retention compacts (digest.delivery.retention).
    planned_month: Mapped[date] = mapped_column(Date, default=lambda: month_of(utcnow()))


def month_of(at: datetime) -> date:
    """The first day of `at`'s month in UTC: a delivery's planned_month."""
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


class ReaderDeliverySummary(Base):
    """What one reader was sent in one month whose delivery rows were compacted: the counts
    by status and each edition with its status, for the reader's data export and history
    after the rows are gone. Written only by digest.delivery.retention."""

    __tablename__ = "reader_delivery_summaries"

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # [[edition id, status], ...] by edition id.
    editions: Mapped[list[list[Any]]] = mapped_column(JSON)


class DeliveryCompaction(Base):
    """A month of deliveries compacted: its summaries were written (compacted_at, in the same
    transaction, so a month is summarised once however many jobs run), and its rows removed
    (removed_at: the partition dropped, or the last batch deleted). Written only by
    digest.delivery.retention."""

    __tablename__ = "delivery_compactions"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    editions: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    compacted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentEvent(Base):
    """The consent ledger (GDPR Art. 7): who gave or withdrew consent, when, how, to what text."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # subscribe, confirm, unsubscribe, preferences, erase
    kind: Mapped[str] = mapped_column(String(32))
    # form, one-click, page, mailto, preferences, admin, cli, import, demo
    channel: Mapped[str] = mapped_column(String(32))
    form: Mapped[str | None] = mapped_column(String(100))
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON)


class Suppression(Base):
    """Addresses that must never be re-added silently, kept only as a one-way hash."""

    __tablename__ = "suppressions"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))  # erased, bounced, complained
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NoticeStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Notice(Base):
    """A one-off message to one reader (confirm, welcome): recorded like every send."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[NoticeStatus] = mapped_column(_enum(NoticeStatus), default=NoticeStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[ErrorCode | None] = mapped_column(_enum(ErrorCode, 32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Newsletter(Base):
    """A recurring digest: a cron expression in an IANA zone and/or a story trigger, an
    audience, a format."""

    __tablename__ = "newsletters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    sender_name: Mapped[str | None] = mapped_column(String(120))
    # None: no schedule, the newsletter goes by its story trigger alone.
    cron: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    topics: Mapped[list[str] | None] = mapped_column(JSON)
    # Sent by stories (an alert): an edition when `trigger_stories` new qualifying stories
    # have arrived since the last one, at most one in `trigger_every_minutes`, going out
    # `trigger_hold_minutes` after it is made. None: no story trigger (digest.editions.triggers).
    trigger_stories: Mapped[int | None] = mapped_column(Integer)
    trigger_every_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default=text("60"))
    trigger_hold_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    max_stories: Mapped[int] = mapped_column(Integer, default=5)
    # Fewer qualifying stories than this and the edition is skipped, not sent half-empty.
    min_stories: Mapped[int] = mapped_column(Integer, default=1)
    window_hours: Mapped[int] = mapped_column(Integer, default=48)
    subject_template: Mapped[str] = mapped_column(String(300))
    # Deliver each edition at the cron's wall time in every reader's own zone.
    local_time: Mapped[bool] = mapped_column(Boolean, default=False)
    # Paused (False): beat makes no editions. Archived: paused for good, out of readers'
    # choices and the archive's list, its history kept.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What beat makes of each occurrence: a scheduled edition, which goes out unattended,
    # or a draft that waits for an editor to curate and schedule it.
    new_editions: Mapped[NewEditions] = mapped_column(_enum(NewEditions), default=NewEditions.SCHEDULED,
                                                      server_default=NewEditions.SCHEDULED.value)
    # Editions are created this far ahead so editors can curate them before they go.
    scheduled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Click redirects add utm_source=digest, utm_medium=email, utm_campaign=<slug> to the
    # story's address, for the publisher's own analytics (off: the address as stored).
    utm_tags: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Stories no editor pinned or ordered go by their topics' recent click-through in this
    # newsletter (digest.editions.engagement); off: featured, then the most recent first.
    engagement_order: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Per-reader click history, for the readers who also consented (click_history_consents);
    # off: clicks are only counted, nobody's are remembered (docs/clicks.md).
    click_history: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A 1x1 image counting opens per edition and variant (no reader identity); off by default,
    # and unreliable when on: Apple Mail loads every image, many clients load none.
    open_pixel: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Its brand (digest.mail.brand checks every value; None: the default look).
    brand_logo_url: Mapped[str | None] = mapped_column(String(2048))
    brand_logo_width: Mapped[int | None] = mapped_column(Integer)
    brand_accent_color: Mapped[str | None] = mapped_column(String(7))
    brand_link_color: Mapped[str | None] = mapped_column(String(7))
    brand_font: Mapped[str | None] = mapped_column(String(32))
    brand_footer_text: Mapped[str | None] = mapped_column(String(500))
    brand_reply_to: Mapped[str | None] = mapped_column(String(320))
    brand_language: Mapped[str | None] = mapped_column(String(35))


class NewsletterSubscription(Base):
    __tablename__ = "newsletter_subscriptions"

    newsletter_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("newsletters.id", ondelete="CASCADE"), primary_key=True
    )
    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EditionCuration(Base):
    """An editor's hand on one story in one edition: pin or exclude, order, and the
    headline and summary shown there (the stored story is not changed)."""

    __tablename__ = "edition_curation"

    edition_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    story_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True
    )
    action: Mapped[str] = mapped_column(String(16))  # pin, exclude
    position: Mapped[int | None] = mapped_column(Integer)
    headline: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A one-time password (from `digest users add` or an admin's reset): the next sign-in
    # must choose a new one before any other staff page opens.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class WebSession(Base):
    """A signed-in browser. The cookie holds a random id; only its hash is stored."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what, when: every editor and ops action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))
    # The entry point the action came through: web, api, ops, cli, system.
    via: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON)


class Feed(Base):
    """A publisher's feed, registered once and polled: where it is, how often to look, how
    its items become stories, and how the last polls went. Only digest.feeds writes it."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    every_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # False: not polled. `paused_reason` says why when the feed stopped itself (HTTP 410,
    # too many failures in a row); None when staff paused it.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    # Mapping: topics every item gets; a feed category -> topic map (an unmapped category
    # is dropped when a map is set); every item featured, or those in these categories.
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    category_topics: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    featured_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Conditional GET: sent back on every poll, so an unchanged feed answers 304 unparsed.
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row; 0 after a good poll
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The per-feed lock: a poller owns the feed until then (two beats or workers never
    # poll one feed at once); past it, a crashed poller's claim is void.
    polling_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # WebSub: the hub and topic the feed advertises (written by each full poll), and our
    # subscription there: its state (requested, verified, denied, failed), the secret the
    # hub signs pushes with, when the hub's lease ends and when we last asked.
    hub_url: Mapped[str | None] = mapped_column(String(2048))
    hub_topic: Mapped[str | None] = mapped_column(String(2048))
    hub_state: Mapped[str | None] = mapped_column(String(16))
    hub_secret: Mapped[str | None] = mapped_column(String(128))
    hub_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hub_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hub_error: Mapped[str | None] = mapped_column(String(500))


class FeedItem(Base):
    """Which story a feed's item became, by the feed's own id for it (its guid, else its
    canonical URL): a later poll recognises the item even when its link changes."""

    __tablename__ = "feed_items"

    feed_id: Mapped[int] = mapped_column(BigId, ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    guid: Mapped[str] = mapped_column(String(2048), primary_key=True)
    story_id: Mapped[int] = mapped_column(BigId, ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Clicks (digest.clicks): numbers per edition, story and subject variant, and nothing else:
# no reader, address, IP, user agent or time of one click is kept in these tables (click_hours
# holds the number of clicks in each hour, nothing finer).

ANY = -1  # click_uniques: the story or variant column of a union over all of them
MASTHEAD = 0  # the story id of the masthead link (the publisher's site)


class ClickCount(Base):
    """Clicks on one story's link (0: the masthead) in one subject variant of an edition:
    `clicks` by people, `machine_clicks` by scanners, previews, bursts and floods."""

    __tablename__ = "click_counts"

    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    story_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    variant: Mapped[int] = mapped_column(Integer, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    machine_clicks: Mapped[int] = mapped_column(Integer, default=0)


class ClickUnique(Base):
    """Estimated distinct copies whose links were clicked by a person (a HyperLogLog count
    read at each flush): per story and variant, per story (`variant` ANY), per variant
    (`story_id` ANY) and for the whole edition (both ANY)."""

    __tablename__ = "click_uniques"

    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    story_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    variant: Mapped[int] = mapped_column(Integer, primary_key=True)
    unique_clicks: Mapped[int] = mapped_column(Integer, default=0)


class ClickHour(Base):
    """An edition's clicks in one hour (its start, UTC): by people and by machines, all
    links together. Written only by the flush (digest.clicks.flush)."""

    __tablename__ = "click_hours"

    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    machine_clicks: Mapped[int] = mapped_column(Integer, default=0)


class ClickFlush(Base):
    """A flush of counts from Redis that has been applied: a flush retried after a crash
    finds its id here and adds nothing twice."""

    __tablename__ = "click_flushes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    flushed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ClickHistoryConsent(Base):
    """A reader's yes to "Remember which stories I click" for one newsletter; the row is the
    consent in force (the consent ledger has each yes and no), gone when they say no."""

    __tablename__ = "click_history_consents"

    subscriber_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscribers.id", ondelete="CASCADE"),
                                               primary_key=True)
    newsletter_id: Mapped[int] = mapped_column(BigId, ForeignKey("newsletters.id", ondelete="CASCADE"),
                                               primary_key=True, index=True)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClickHistory(Base):
    """One person's click on a story of an edition, kept only while its newsletter has
    `click_history` on and the reader's consent stands (digest.readers.click_history)."""

    __tablename__ = "click_history"
    __table_args__ = (UniqueConstraint("subscriber_id", "edition_id", "story_id", "clicked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), index=True)
    story_id: Mapped[int] = mapped_column(BigId)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OpenCount(Base):
    """Opens of one subject variant of an edition, from the open pixel (newsletters with
    `open_pixel` on): image loads, and distinct copies (a HyperLogLog estimate). Totals as
    Redis holds them, written whole at each flush."""

    __tablename__ = "open_counts"

    edition_id: Mapped[int] = mapped_column(BigId, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True)
    variant: Mapped[int] = mapped_column(Integer, primary_key=True)
    opens: Mapped[int] = mapped_column(Integer, default=0)
    unique_opens: Mapped[int] = mapped_column(Integer, default=0)
