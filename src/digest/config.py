"""Settings: every knob is a DIGEST_ environment variable, validated once at start-up.

A bad value fails here with a message naming the variable, not later inside a worker.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digest.zones import UnknownZone, load_zone

DEV_SECRET_KEY = "dev-insecure-change-me"
PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parents[1]


def default_templates_dir() -> Path:
    """The templates a wheel carries inside the package; from a checkout (an editable
    install, the tests) the repository's own templates/, which stays at the top."""
    packaged = PACKAGE_ROOT / "templates"
    return packaged if packaged.is_dir() else REPO_ROOT / "templates"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class SmtpTarget:
    """A parsed DIGEST_SMTP_URL: where messages go."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        if self.scheme not in ("smtp", "smtps", "outbox"):
            raise ValueError("must start with smtp://, smtps:// or outbox://")
        if self.scheme == "outbox":
            # outbox:///abs/path is absolute; outbox://./rel is relative to the working folder.
            path = unquote(parts.netloc + parts.path)
            if not path:
                raise ValueError("outbox:// needs a folder, e.g. outbox:///var/spool/digest")
            self.folder = Path(path)
            self.host, self.port, self.username, self.password, self.starttls = "", 0, None, None, False
            self.weight = 1.0
            return
        if not parts.hostname:
            raise ValueError("needs a host, e.g. smtp://localhost:1025")
        self.folder = None
        self.host = parts.hostname
        try:
            self.port = parts.port or (465 if self.scheme == "smtps" else 25)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        self.starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        try:
            self.weight = max(0.0, float(query.get("weight", ["1"])[0]))
        except ValueError:
            raise ValueError("weight must be a number") from None


def load_sendgrid_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER); ValueError saying why not."""
    try:
        key = load_der_public_key(base64.b64decode("".join(value.split()), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError("must be the base64 DER public key SendGrid shows for the Signed Event Webhook") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("must be an ECDSA P-256 public key")
    return key


def parse_fetch_allow(value: str) -> list[tuple[str, int | None]]:
    """DIGEST_FETCH_ALLOW's entries as (host, port or None for any port); ValueError saying
    which entry is not `host`, `host:port`, `[v6]` or `[v6]:port`."""
    entries: list[tuple[str, int | None]] = []
    for item in filter(None, (p.strip() for p in value.split(","))):
        host, port = item, ""
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest and not rest.startswith(":"):
                host = ""
            port = rest[1:]
        elif item.count(":") == 1:
            host, port = item.split(":")
        if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)) or "/" in host or " " in host:
            raise ValueError(f"expected comma-separated host or host:port, got {item!r}")
        entries.append((host.lower(), int(port) if port else None))
    return entries


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIGEST_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///digest.db"
    broker_url: str = "redis://localhost:6379/0"
    # Bearer token required by /metrics when set (or keep /metrics off the public network).
    metrics_token: str | None = None
    # Sending limits shared by all workers (Redis token buckets): messages per second in
    # all, and per recipient domain ("gmail.com=50,outlook.com=20"). Unset: no limit.
    rate_limit_per_second: float | None = Field(None, gt=0)
    domain_rate_limits: str = ""
    # DKIM: sign every message when a selector and a PEM private key file are given.
    dkim_selector: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,63}$")
    dkim_private_key_file: Path | None = None
    dkim_domain: str | None = None  # default: the sender's domain
    # In production digest refuses to send unsigned mail, unless this says the MTA signs it.
    dkim_by_mta: bool = False
    # Where send journals live (a sub-folder per database); see digest.delivery.journal.
    journal_dir: Path | None = None
    # Logs of the worker, beat and web processes: json (one object per line) or text.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The Celery queue digest's tasks go to (one broker can serve several deployments).
    task_queue: str = Field("digest", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    # Redis for rate limits and cooldowns; the broker's Redis when unset.
    redis_url: str | None = None
    smtp_url: str = "smtp://localhost:1025"
    base_url: str = "http://localhost:8000"
    # The publisher's site; plain-text articles without a URL are linked under it.
    site_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    sender: str = "Political IQ <digest@news.example.com>"
    postal_address: str = "Political IQ, 1 Example Plaza, Springfield, USA"
    list_id: str = "Featured Stories <featured.news.example.com>"
    unsubscribe_mailto: str | None = None
    feedback_id_sender: str = "digest"
    # email/<name>/{subject.txt,body.html,body.txt} and web/; the installed ones by default.
    templates_dir: Path = Field(default_factory=default_templates_dir)
    batch_size: int = Field(500, ge=1, le=10_000)
    window_hours: int = Field(48, ge=1)
    max_stories: int = Field(5, ge=1, le=50)
    # The IANA zone editor pages show times in (an edition of a newsletter: the newsletter's).
    timezone: str = "UTC"
    max_attempts: int = Field(5, ge=1, le=50)
    # How long a batch's claim on its deliveries outlives the batch's last heartbeat (renewed
    # every quarter of it while the batch lives, delivery/lease.py): after a SIGKILL, an OOM
    # or a lost host, the rows are free again within this, and the sweeper re-enqueues them
    # within sweep_every_seconds more. 20 + 5: sending resumes within ~26 s.
    lease_seconds: int = Field(20, ge=10)
    confirm_token_max_age_days: int = Field(7, ge=1, le=90)
    # A second sign-up for the same address within this time sends no second email.
    subscribe_cooldown_seconds: int = Field(600, ge=0)
    # Every "check your inbox" answer takes at least this long, whatever the address's state:
    # a new reader costs a few inserts and a broker round trip, a known one a lookup, and
    # the difference would tell who is subscribed. Above the slowest path on a busy machine.
    subscribe_answer_ms: int = Field(300, ge=0, le=5000)
    subscribe_limit_per_ip_per_hour: int = Field(20, ge=1)
    # Counted on the mailbox (readers.mailbox_key: plus-tags, and gmail's dots, removed).
    subscribe_limit_per_address_per_hour: int = Field(5, ge=1)
    # Confirmation mails to one destination domain per hour: past it the answer is the same
    # but no mail goes, so the form cannot flood one organisation's mail server.
    subscribe_confirmations_per_domain_per_hour: int = Field(200, ge=1)
    max_form_bytes: int = Field(64 * 1024, ge=1024)
    # The proxies whose X-Forwarded-For names the client (comma-separated addresses or
    # networks, or *); none by default: the connection's own address counts.
    forwarded_allow_ips: str = ""
    # Publishers' pages that may carry the sign-up snippet (`digest embed`), comma-separated
    # origins ("https://news.example.com,https://www.example.com"): their POST /subscribe needs
    # no CSRF cookie and gets CORS headers; any other Origin is refused.
    embed_origins: str = ""
    # Inbound mail (mailto: unsubscribes): a maildir polled by beat, and an HTTP hook's secret.
    unsubscribe_maildir: Path | None = None
    inbound_secret: str | None = None
    # Bounces and complaints: a maildir where DSNs and ARF reports to the envelope sender
    # land (polled by beat), and the provider webhooks (each off while its setting is unset).
    bounce_maildir: Path | None = None
    soft_bounce_limit: int = Field(3, ge=1, le=100)
    # Comma-separated SNS topic ARNs whose notifications /hooks/ses accepts.
    ses_topic_arns: str | None = None
    ses_auto_confirm: bool = False
    # SendGrid's Signed Event Webhook verification key: base64 of the DER public key.
    sendgrid_public_key: str | None = None
    # Auto-pause: an edition pauses itself when this share of its last N attempts failed.
    autopause_window: int = Field(200, ge=10)
    autopause_failure_ratio: float = Field(0.5, gt=0, le=1)
    # A scheduled edition later than this (workers were down) is skipped, not sent.
    missed_edition_limit_minutes: int = Field(180, ge=1)
    # Recurring newsletters get their editions created this far ahead, for curation.
    schedule_ahead_hours: int = Field(48, ge=1, le=24 * 31)
    # How often beat asks for due editions to be released, and for lost work to be swept.
    release_every_seconds: float = Field(15.0, gt=0, le=3600)
    # Every 5 s adds at most 5 s to a recovery; the sweep costs a few queries, and ~0.15 s
    # of database time per sending edition of a million queued rows (docs/send.md).
    sweep_every_seconds: float = Field(5.0, gt=0, le=3600)
    # Delivery rows older than this are compacted into per-edition tallies and per-reader
    # monthly summaries, then dropped (digest.delivery.retention; the reasoning for 90 is in
    # docs/capacity.md: late complaints, weekly dedupe, the charts' 30 days, the export).
    delivery_retention_days: int = Field(90, ge=35, le=3650)
    # Click counts move from Redis to the database this often (digest.flush_clicks).
    click_flush_every_seconds: float = Field(10.0, gt=0, le=3600)
    # Seconds in a minute of a subject test's wait (--ab-wait MINUTES): 60, always, but for
    # the tests, which run a test of "5 minutes" in 5 s rather than fake the clock.
    ab_wait_unit_seconds: float = Field(60.0, gt=0, le=60)
    # A click this soon after its copy was sent is a scanner's at the receiving end.
    click_scan_seconds: float = Field(20.0, ge=0, le=3600)
    # Send loops write their results and re-check readers once a second, or after this many
    # messages when that comes first (the default leaves it to the clock: a constant number
    # of statements per batch; the send journal covers the crash window either way).
    record_every_messages: int = Field(10_000, ge=1)
    # First retry delay after a 4xx or dropped connection; doubles per attempt, capped.
    retry_base_seconds: float = Field(30.0, gt=0, le=600)
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    smtp_helo: str | None = None
    # Hosts server-side fetches may reach although they resolve to a private, loopback or
    # other non-public address: comma-separated `host` or `host:port` (an intranet CMS).
    fetch_allow: str = ""
    # How often beat looks for feeds due a poll (each feed keeps its own interval; this is
    # only how late a due poll may start).
    feeds_check_every_seconds: float = Field(30.0, gt=0, le=3600)
    # Topics readers and editions can choose from, comma-separated.
    topics: str = "politics,world,business,technology,science,health,sports,culture"

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        # One URL, or several separated by commas (a pool; `?weight=N` on each).
        for url in value.split(","):
            SmtpTarget(url.strip())
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be sqlite:///path or postgresql+psycopg://user@host/db")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the driver we ship; spare users the dialect suffix.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "memory://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL, e.g. https://news.example.com/digest")
        return value.rstrip("/")

    @field_validator("embed_origins")
    @classmethod
    def _embed_origins(cls, value: str) -> str:
        origins = []
        for raw in filter(None, (part.strip() for part in value.split(","))):
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") \
                    or parts.query or parts.fragment or parts.username:
                raise ValueError(f"{raw!r} is not an origin: scheme and host only, e.g. https://news.example.com")
            # As browsers write Origin: lower case, no default port.
            try:
                port = parts.port
            except ValueError:
                raise ValueError(f"{raw!r} has a bad port") from None
            default = {"http": 80, "https": 443}[parts.scheme]
            host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            origins.append(f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else ""))
        return ",".join(origins)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be one line")
        _, address = parseaddr(value)
        if "@" not in address:
            raise ValueError("must be an address, e.g. 'Political IQ <digest@news.example.com>'")
        return value

    @field_validator("feedback_id_sender")
    @classmethod
    def _feedback_sender(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{5,15}", value):
            raise ValueError("must be 5-15 letters, digits, '.', '_' or '-' (a stable sender id)")
        return value

    @field_validator("domain_rate_limits")
    @classmethod
    def _domain_limits(cls, value: str) -> str:
        for item in filter(None, (p.strip() for p in value.split(","))):
            domain, _, rate = item.partition("=")
            try:
                ok = bool(domain.strip()) and float(rate) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"expected domain=messages_per_second pairs, got {item!r}")
        return value

    @field_validator("fetch_allow")
    @classmethod
    def _fetch_allow(cls, value: str) -> str:
        parse_fetch_allow(value)  # ValueError names the bad entry
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: str) -> str:
        topics = [t.strip().lower() for t in value.split(",") if t.strip()]
        bad = [t for t in topics if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", t)]
        if bad or not topics:
            raise ValueError(f"must be comma-separated lowercase words, got {bad or value!r}")
        return ",".join(topics)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            return load_zone(value).key
        except UnknownZone as exc:
            raise ValueError(str(exc)) from None

    @field_validator("ses_topic_arns")
    @classmethod
    def _ses_topic_arns(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        arns = [a.strip() for a in value.split(",") if a.strip()]
        bad = [a for a in arns if not re.fullmatch(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}", a)]
        if bad:
            raise ValueError(f"must be comma-separated SNS topic ARNs (arn:aws:sns:REGION:ACCOUNT:TOPIC), "
                             f"got {bad[0]!r}")
        return ",".join(arns)

    @field_validator("sendgrid_public_key")
    @classmethod
    def _sendgrid_public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        load_sendgrid_key(value)  # ValueError names what is wrong
        return value.strip()

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _forwarded_allow_ips(cls, value: str) -> str:
        entries = [e.strip() for e in value.split(",") if e.strip()]
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"must be comma-separated IP addresses or networks (or *), got {entry!r}") from None
        return ",".join(entries)
    @field_validator("templates_dir")
    @classmethod
    def _templates_dir(cls, value: Path) -> Path:
        # Checked when set; the default is the installed templates (see default_templates_dir).
        if not (value / "email").is_dir():
            raise ValueError(f"{value} has no email/ folder (it should hold email/<name>/subject.txt, …)")
        return value

    @field_validator("postal_address", "list_id", "smtp_helo")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must be one line")
        return value

    @model_validator(mode="after")
    def _secret_outside_development(self) -> Settings:
        if self.env != "development" and self.secret_key == DEV_SECRET_KEY:
            raise ValueError("DIGEST_SECRET_KEY must be set outside development (DIGEST_ENV)")
        if len(self.secret_key) < 16:
            raise ValueError("DIGEST_SECRET_KEY must be at least 16 characters")
        return self

    @model_validator(mode="after")
    def _production_mail_is_trusted(self) -> Settings:
        """What production must not do by accident: one-click unsubscribe links over http
        (RFC 8058 and Gmail's and Yahoo's sender rules need https) and unsigned mail."""
        if self.env != "production":
            return self
        if not self.base_url.startswith("https://"):
            raise ValueError("DIGEST_BASE_URL must be https:// in production: one-click unsubscribe (RFC 8058) "
                             "needs it")
        if not (self.dkim_selector and self.dkim_private_key_file) and not self.dkim_by_mta:
            raise ValueError("production mail must be DKIM-signed: set DIGEST_DKIM_SELECTOR and "
                             "DIGEST_DKIM_PRIVATE_KEY_FILE, or DIGEST_DKIM_BY_MTA=true if the MTA signs it")
        return self

    @property
    def smtp(self) -> SmtpTarget:
        """The first (or only) SMTP target."""
        return self.smtp_targets[0]

    @property
    def smtp_targets(self) -> list[SmtpTarget]:
        return [SmtpTarget(url.strip()) for url in self.smtp_url.split(",") if url.strip()]

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rsplit("@", 1)[1]

    @property
    def sender_name(self) -> str:
        return parseaddr(self.sender)[0] or self.sender_address

    @property
    def domain_limits(self) -> dict[str, float]:
        pairs = (p.strip().partition("=") for p in self.domain_rate_limits.split(",") if p.strip())
        return {domain.strip().lower(): float(rate) for domain, _, rate in pairs}

    @property
    def embed_origin_list(self) -> tuple[str, ...]:
        return tuple(filter(None, self.embed_origins.split(",")))

    @property
    def topic_list(self) -> list[str]:
        return self.topics.split(",")

    @property
    def public_site_url(self) -> str:
        return (self.site_url or f"https://{self.sender_domain}").rstrip("/")

    @property
    def list_unsubscribe_mailto(self) -> str:
        return self.unsubscribe_mailto or f"unsubscribe@{self.sender_domain}"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = "_".join(str(part) for part in first["loc"]) if first["loc"] else ""
    name = f"DIGEST_{field.upper()}" if field else "configuration"
    message = first["msg"].removeprefix("Value error, ")
    return f"{name}: {message}"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
