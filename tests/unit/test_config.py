"""Settings: defaults, URL mapping, one clear error per bad variable, secrets kept secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from leadsync.config import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    RateLimit,
    Settings,
    async_database_url,
    env_name,
    load_settings,
)


def test_defaults_when_nothing_is_set() -> None:
    settings = load_settings()

    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///./leadsync.db"
    assert settings.async_database_url == "sqlite+aiosqlite:///./leadsync.db"
    assert settings.is_postgres is False
    assert settings.hubspot_token is None
    assert settings.hubspot_token_file is None
    assert settings.read_hubspot_token() is None
    assert settings.hubspot_base_url == "https://api.hubapi.com"
    assert settings.hubspot_write_mode == "batch"
    assert settings.hubspot_rate_limit == "90/10s"
    assert settings.rate_limit == RateLimit(count=90, window_seconds=10.0)
    assert settings.hubspot_account_timezone == "UTC"
    assert settings.hubspot_connect_timeout_seconds == 5.0
    assert settings.hubspot_read_timeout_seconds == 15.0
    assert settings.hubspot_total_timeout_seconds == 30.0
    assert settings.hubspot_extra_properties == {}
    assert settings.internal_token is None
    assert settings.log_format == "console"
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 64 * 1024
    assert settings.poll_interval_seconds == 5.0
    assert settings.wakeups_enabled is True
    assert settings.lease_seconds == 60.0
    assert settings.batch_size == 100
    assert settings.max_inflight_batches == 4
    assert settings.retry_base_seconds == 2.0
    assert settings.retry_cap_seconds == 900.0
    assert settings.max_attempts == 10
    assert settings.reconcile_after_seconds == 3600.0
    assert settings.reconcile_interval_seconds == 60.0
    assert settings.secrets() == []


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_RATE_LIMIT", "190/10s")
    monkeypatch.setenv("LEADSYNC_BATCH_SIZE", "25")
    monkeypatch.setenv("HUBSPOT_WRITE_MODE", "single")
    monkeypatch.setenv("HUBSPOT_BASE_URL", "http://127.0.0.1:8090/")
    monkeypatch.setenv("HUBSPOT_EXTRA_PROPERTIES", '{"source": "lead_source"}')
    monkeypatch.setenv("LEADSYNC_WAKEUPS", "false")
    monkeypatch.setenv("HUBSPOT_ACCOUNT_TIMEZONE", "Europe/Madrid")

    settings = load_settings()

    assert settings.rate_limit == RateLimit(count=190, window_seconds=10.0)
    assert settings.batch_size == 25
    assert settings.hubspot_write_mode == "single"
    assert settings.hubspot_base_url == "http://127.0.0.1:8090"  # trailing slash dropped
    assert settings.hubspot_extra_properties == {"source": "lead_source"}
    assert settings.wakeups_enabled is False
    assert str(settings.account_zone) == "Europe/Madrid"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@db:5432/leads", "postgresql+asyncpg://u@db:5432/leads"),
        ("postgres://u@db/leads", "postgresql+asyncpg://u@db/leads"),
        ("postgresql+psycopg://u@db/leads", "postgresql+asyncpg://u@db/leads"),
        ("postgresql+psycopg2://u@db/leads", "postgresql+asyncpg://u@db/leads"),
        ("postgresql+asyncpg://u@db/leads", "postgresql+asyncpg://u@db/leads"),
        ("sqlite:///./leadsync.db", "sqlite+aiosqlite:///./leadsync.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_database_url_gets_the_async_driver(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


def test_postgresql_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://leadsync@db.internal:5432/leadsync")

    settings = load_settings()

    assert settings.async_database_url == "postgresql+asyncpg://leadsync@db.internal:5432/leadsync"
    assert settings.is_postgres is True


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@db/leads"),
        ("HUBSPOT_RATE_LIMIT", "abc"),
        ("HUBSPOT_RATE_LIMIT", "0/10s"),
        ("HUBSPOT_RATE_LIMIT", "10/0s"),
        ("HUBSPOT_WRITE_MODE", "bulk"),
        ("HUBSPOT_BASE_URL", "ftp://api.hubapi.com"),
        ("HUBSPOT_ACCOUNT_TIMEZONE", "Mars/Olympus_Mons"),
        ("HUBSPOT_EXTRA_PROPERTIES", "{not json"),
        ("HUBSPOT_EXTRA_PROPERTIES", '{"source": 1}'),
        ("HUBSPOT_TOKEN_FILE", "/nonexistent/leadsync/token"),
        ("HUBSPOT_CONNECT_TIMEOUT_SECONDS", "0"),
        ("HUBSPOT_READ_TIMEOUT_SECONDS", "-1"),
        ("HUBSPOT_TOTAL_TIMEOUT_SECONDS", "soon"),
        ("LEADSYNC_LOG_FORMAT", "xml"),
        ("LEADSYNC_LOG_LEVEL", "VERBOSE"),
        ("LEADSYNC_MAX_BODY_BYTES", "0"),
        ("LEADSYNC_POLL_INTERVAL_SECONDS", "0"),
        ("LEADSYNC_WAKEUPS", "sometimes"),
        ("LEADSYNC_LEASE_SECONDS", "0"),
        ("LEADSYNC_BATCH_SIZE", "0"),
        ("LEADSYNC_BATCH_SIZE", "101"),
        ("LEADSYNC_BATCH_SIZE", "ten"),
        ("LEADSYNC_MAX_INFLIGHT_BATCHES", "0"),
        ("LEADSYNC_RETRY_BASE_SECONDS", "0"),
        ("LEADSYNC_RETRY_CAP_SECONDS", "0"),
        ("LEADSYNC_MAX_ATTEMPTS", "0"),
        ("LEADSYNC_RECONCILE_AFTER_SECONDS", "-1"),
        ("LEADSYNC_RECONCILE_INTERVAL_SECONDS", "0"),
        ("LEADSYNC_PAUSE_CAP_SECONDS", "0"),
        ("LEADSYNC_PAUSE_CAP_SECONDS", "86401"),
    ],
)
def test_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert message.startswith("invalid configuration: ")
    # Exactly one problem, attributed to the variable the operator actually set.
    assert re.findall(r"\b[A-Z][A-Z_]+(?=: )", message) == [variable]
    assert "\n" not in message


@pytest.mark.parametrize(
    ("lease", "timeout"), [("6", None), ("31", "30"), ("3", "2"), ("0.5", "0.1")]
)
def test_a_lease_shorter_than_one_call_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, lease: str, timeout: str | None
) -> None:
    monkeypatch.setenv("LEADSYNC_LEASE_SECONDS", lease)
    if timeout is not None:
        monkeypatch.setenv("HUBSPOT_TOTAL_TIMEOUT_SECONDS", timeout)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert "LEADSYNC_LEASE_SECONDS" in message
    assert "HUBSPOT_TOTAL_TIMEOUT_SECONDS" in message
    assert "\n" not in message


def test_a_lease_that_covers_one_call_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_LEASE_SECONDS", "6")
    monkeypatch.setenv("HUBSPOT_TOTAL_TIMEOUT_SECONDS", "4")
    assert load_settings().lease_seconds == 6.0


def test_several_bad_values_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_RATE_LIMIT", "abc")
    monkeypatch.setenv("LEADSYNC_BATCH_SIZE", "0")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert "HUBSPOT_RATE_LIMIT: " in str(caught.value)
    assert "LEADSYNC_BATCH_SIZE: " in str(caught.value)


def test_error_never_echoes_a_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://leadsync:hunter2-db-password@db/leads")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2-db-password" not in str(caught.value)


def test_error_never_echoes_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-eu1-super-secret")
    monkeypatch.setenv("LEADSYNC_INTERNAL_TOKEN", "internal-super-secret")
    monkeypatch.setenv("HUBSPOT_RATE_LIMIT", "abc")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert "super-secret" not in str(caught.value)
    assert caught.value.__cause__ is None  # `from None`: no chained pydantic error with inputs
    assert caught.value.__suppress_context__


def test_short_internal_token_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADSYNC_INTERNAL_TOKEN", "tiny-secret")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert "LEADSYNC_INTERNAL_TOKEN: " in str(caught.value)
    assert "tiny-secret" not in str(caught.value)


def test_overrides_by_field_name_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSYNC_BATCH_SIZE", "10")

    assert load_settings(batch_size=20).batch_size == 20


def test_settings_are_frozen() -> None:
    settings = load_settings()

    with pytest.raises(ValidationError):
        settings.batch_size = 5  # type: ignore[misc]


def test_token_file_is_reread_on_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "hubspot-token"
    token_file.write_text("pat-first\n", encoding="utf-8")
    monkeypatch.setenv("HUBSPOT_TOKEN_FILE", str(token_file))
    settings = load_settings()

    assert settings.read_hubspot_token() == "pat-first"  # surrounding whitespace stripped

    token_file.write_text("pat-rotated", encoding="utf-8")
    assert settings.read_hubspot_token() == "pat-rotated"
    assert "pat-rotated" in settings.secrets()


def test_token_file_wins_over_token_and_falls_back_when_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "hubspot-token"
    token_file.write_text("pat-from-file", encoding="utf-8")
    monkeypatch.setenv("HUBSPOT_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-from-env")
    settings = load_settings()

    assert settings.read_hubspot_token() == "pat-from-file"

    token_file.write_text("", encoding="utf-8")  # mid-rotation: the file is being rewritten
    assert settings.read_hubspot_token() == "pat-from-env"

    token_file.unlink()
    assert settings.read_hubspot_token() == "pat-from-env"


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-env")

    assert load_settings().read_hubspot_token() == "pat-env"


def test_secrets_lists_every_secret_for_redaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "hubspot-token"
    token_file.write_text("pat-file", encoding="utf-8")
    monkeypatch.setenv("HUBSPOT_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-env")
    monkeypatch.setenv("LEADSYNC_INTERNAL_TOKEN", "internal-token-0123456789")
    monkeypatch.setenv("DATABASE_URL", "postgresql://leadsync:db-pass-123@db/leads")

    secrets = load_settings().secrets()

    assert {"pat-file", "pat-env", "internal-token-0123456789", "db-pass-123"} <= set(secrets)


def test_secrets_never_appear_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "hubspot-token"
    token_file.write_text("pat-in-a-file-secret", encoding="utf-8")
    monkeypatch.setenv("HUBSPOT_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-env-secret")
    monkeypatch.setenv("LEADSYNC_INTERNAL_TOKEN", "internal-token-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://leadsync:db-password-secret@db:5432/leads")

    settings = load_settings()

    leaked = ["pat-in-a-file-secret", "pat-env-secret", "internal-token-secret", "db-password"]
    for text in (repr(settings), str(settings)):
        assert [s for s in leaked if s in text] == [], text
    # The URL stays useful for debugging, with only the password masked.
    assert "leadsync:***@db:5432/leads" in repr(settings)
    # The real value is still there for the engine.
    assert "db-password-secret" in settings.async_database_url


@pytest.mark.parametrize(
    ("text", "count", "window"),
    [("190/10s", 190, 10.0), ("100/10000ms", 100, 10.0), ("5/1", 5, 1.0), (" 6 / 1m ", 6, 60.0)],
)
def test_rate_limit_parsing(text: str, count: int, window: float) -> None:
    assert RateLimit.parse(text) == RateLimit(count=count, window_seconds=window)


def test_env_name_of_every_field_is_its_documented_variable() -> None:
    assert env_name("database_url") == "DATABASE_URL"
    assert env_name("hubspot_token") == "HUBSPOT_TOKEN"
    assert env_name("internal_token") == "LEADSYNC_INTERNAL_TOKEN"
    assert env_name("batch_size") == "LEADSYNC_BATCH_SIZE"
    assert env_name("wakeups_enabled") == "LEADSYNC_WAKEUPS"


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md"])
def test_every_variable_is_documented(repo_root: Path, document: str) -> None:
    text = (repo_root / document).read_text(encoding="utf-8")
    missing = [
        env_name(field) for field in Settings.model_fields if f"`{env_name(field)}`" not in text
    ]
    assert missing == [], f"{document} does not document {missing}"
