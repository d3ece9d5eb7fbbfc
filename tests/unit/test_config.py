"""Settings: a bad DIGEST_ variable fails at start-up with its name in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import DEV_SECRET_KEY, ConfigError, Settings, SmtpTarget, get_settings


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def load(**env: str) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return get_settings()

    return load


def test_defaults_load_in_development(settings_from) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from()

    assert settings.env == "development"
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.sender_domain == "news.example.com"
    assert settings.list_unsubscribe_mailto == "unsubscribe@news.example.com"
    assert settings.public_site_url == "https://news.example.com"


@pytest.mark.parametrize("env", ["production", "test"])
def test_default_secret_outside_development_is_refused(settings_from, env: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY"):
        settings_from(DIGEST_ENV=env)


PRODUCTION = {"DIGEST_ENV": "production", "DIGEST_SECRET_KEY": "k" * 32,
              "DIGEST_BASE_URL": "https://news.example.com/digest", "DIGEST_DKIM_BY_MTA": "true"}


def test_production_with_a_real_secret_https_and_signing_loads(settings_from) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from(**PRODUCTION)

    assert settings.env == "production"


@pytest.mark.parametrize(("change", "refused"), [
    ({"DIGEST_BASE_URL": "http://news.example.com/digest"}, "DIGEST_BASE_URL must be https"),
    ({"DIGEST_DKIM_BY_MTA": "false"}, "must be DKIM-signed"),
    ({"DIGEST_DKIM_BY_MTA": "false", "DIGEST_DKIM_SELECTOR": "s1"}, "must be DKIM-signed"),  # a key file too
])
def test_production_refuses_http_unsubscribe_and_unsigned_mail(settings_from, change: dict[str, str],  # type: ignore[no-untyped-def]
                                                               refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        settings_from(**{**PRODUCTION, **change})
    settings_from(**{**PRODUCTION, **change, "DIGEST_ENV": "test"})  # the same settings are fine outside production


def test_short_secret_is_refused(settings_from) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY"):
        settings_from(DIGEST_SECRET_KEY="short")


def test_embed_origins_are_kept_as_browsers_send_origin(settings_from) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from(DIGEST_EMBED_ORIGINS=" https://News.Example.com:443/ ,http://127.0.0.1:8080,,")
    assert settings.embed_origin_list == ("https://news.example.com", "http://127.0.0.1:8080")
    assert settings_from(DIGEST_EMBED_ORIGINS="").embed_origin_list == ()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_SMTP_URL", "http://mail.example.com"),
        ("DIGEST_SMTP_URL", "mail.example.com:25"),
        ("DIGEST_SMTP_URL", "smtp://"),
        ("DIGEST_SMTP_URL", "smtp://mail.example.com:99999"),
        ("DIGEST_SMTP_URL", "smtp://mail.example.com:port"),
        ("DIGEST_SMTP_URL", "outbox://"),
        ("DIGEST_FETCH_ALLOW", "http://cms.intranet/"),
        ("DIGEST_FETCH_ALLOW", "cms.intranet:http"),
        ("DIGEST_DATABASE_URL", "mysql://user@host/db"),
        ("DIGEST_DATABASE_URL", "digest.db"),
        ("DIGEST_BASE_URL", "news.example.com/digest"),
        ("DIGEST_BASE_URL", "ftp://news.example.com"),
        ("DIGEST_BASE_URL", "https://"),
        ("DIGEST_BROKER_URL", "amqp://localhost"),
        ("DIGEST_ENV", "staging"),
        ("DIGEST_SENDER", "no address here"),
        ("DIGEST_SENDER", "Ann <ann@example.com>\r\nBcc: x@example.com"),
        ("DIGEST_POSTAL_ADDRESS", "1 Street\nTown"),
        ("DIGEST_FEEDBACK_ID_SENDER", "a:b"),
        ("DIGEST_TOPICS", "politics, Not A Word"),
        ("DIGEST_BATCH_SIZE", "0"),
        ("DIGEST_MAX_STORIES", "many"),
        ("DIGEST_TIMEZONE", "Mars/Olympus_Mons"),
        ("DIGEST_TIMEZONE", "../../etc/passwd"),
        ("DIGEST_EMBED_ORIGINS", "https://news.example.com/articles"),
        ("DIGEST_EMBED_ORIGINS", "news.example.com"),
        ("DIGEST_EMBED_ORIGINS", "https://news.example.com:port"),
        ("DIGEST_EMBED_ORIGINS", "https://news.example.com?x=1"),
    ],
)
def test_bad_value_names_the_variable(settings_from, variable: str, value: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        settings_from(**{variable: value})

    assert str(caught.value).startswith(f"{variable}: ")
    assert "\n" not in str(caught.value)


def test_postgres_url_gets_the_psycopg_driver(settings_from) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from(DIGEST_DATABASE_URL="postgresql://digest@db.internal/digest")

    assert settings.database_url == "postgresql+psycopg://digest@db.internal/digest"


def test_base_url_loses_its_trailing_slash(settings_from) -> None:  # type: ignore[no-untyped-def]
    assert settings_from(DIGEST_BASE_URL="https://news.example.com/digest/").base_url == "https://news.example.com/digest"


def test_topics_are_lower_cased_and_trimmed(settings_from) -> None:  # type: ignore[no-untyped-def]
    assert settings_from(DIGEST_TOPICS=" Politics , World,,").topic_list == ["politics", "world"]


def test_pages_show_times_in_utc_unless_a_zone_is_set(settings_from) -> None:  # type: ignore[no-untyped-def]
    assert settings_from().timezone == "UTC"
    assert settings_from(DIGEST_TIMEZONE=" Europe/Kyiv ").timezone == "Europe/Kyiv"


def test_settings_are_read_once(settings_from, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    first = settings_from()
    monkeypatch.setenv("DIGEST_BATCH_SIZE", "7")

    assert get_settings() is first


# ------------------------------------------------------------------ SMTP URLs


def test_smtp_url_with_credentials_and_starttls() -> None:
    target = SmtpTarget("smtp://user%40corp:p%3Ass%2Fword@mail.example.com:2525?starttls=true")

    assert (target.scheme, target.host, target.port) == ("smtp", "mail.example.com", 2525)
    assert (target.username, target.password) == ("user@corp", "p:ss/word")
    assert target.starttls is True
    assert target.folder is None


@pytest.mark.parametrize(("query", "starttls"), [("", False), ("?starttls=false", False), ("?starttls=1", True),
                                                  ("?starttls=YES", True)])
def test_starttls_flag(query: str, starttls: bool) -> None:
    assert SmtpTarget(f"smtp://mail.example.com{query}").starttls is starttls


@pytest.mark.parametrize(("url", "port"), [("smtps://mail.example.com", 465), ("smtp://mail.example.com", 25),
                                           ("smtps://mail.example.com:2465", 2465)])
def test_default_ports(url: str, port: int) -> None:
    target = SmtpTarget(url)

    assert target.port == port
    assert (target.username, target.password) == (None, None)


def test_outbox_absolute_path() -> None:
    target = SmtpTarget("outbox:///var/spool/digest")

    assert target.scheme == "outbox"
    assert target.folder == Path("/var/spool/digest")
    assert target.folder.is_absolute()


def test_outbox_relative_path() -> None:
    target = SmtpTarget("outbox://./spool/out")

    assert target.folder == Path("spool/out")
    assert not target.folder.is_absolute()


def test_outbox_from_the_environment(settings_from, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from(DIGEST_SMTP_URL=f"outbox://{tmp_path}/box")

    assert settings.smtp.folder == tmp_path / "box"
