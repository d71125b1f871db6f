"""Settings: every knob of leadsync, read from the environment and validated at start."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./leadsync.db"
MIN_INTERNAL_TOKEN_LENGTH = 16
# An HMAC key guessable by brute force would let anyone holding the table test addresses.
MIN_ERASURE_KEY_LENGTH = 16
# A HubSpot call starts only while the claim's lease covers its whole total timeout plus this
# margin (clock differences between machines, a busy event loop); otherwise the lease is
# renewed first. So a lease must be at least one call long plus the margin.
LEASE_MARGIN_SECONDS = 2.0

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}
# scheme://user:PASSWORD@host: the password is group 2.
_URL_PASSWORD_RE = re.compile(r"^([^:/]+://[^:/@]*:)([^@]*)@")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A request budget: at most `count` requests in any `window_seconds`."""

    count: int
    window_seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse `190/10s`, `100/10000ms` or `5/1s` into a RateLimit."""
        match = _RATE_RE.match(text)
        if not match:
            raise ValueError(f"expected COUNT/WINDOW such as '190/10s', got {text!r}")
        count = int(match.group(1))
        window = float(match.group(2)) * _UNIT_SECONDS[match.group(3) or "s"]
        if count < 1 or window <= 0:
            raise ValueError(f"count and window must be positive, got {text!r}")
        return cls(count=count, window_seconds=window)

    def __str__(self) -> str:
        return f"{self.count}/{self.window_seconds:g}s"


def async_database_url(url: str) -> str:
    """Map a plain `postgresql://` or `sqlite://` URL to the async driver SQLAlchemy needs."""
    for prefix, driver in (
        ("postgresql+asyncpg://", None),
        ("sqlite+aiosqlite://", None),
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("postgresql+psycopg2://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return url if driver is None else driver + url[len(prefix) :]
    raise ValueError("must start with postgresql:// or sqlite:///")


def redact_database_url(url: str) -> str:
    """Return the URL with its password replaced by `***`, fit for logs and repr."""
    return _URL_PASSWORD_RE.sub(r"\1***@", url)


def _database_password(url: str) -> list[str]:
    match = _URL_PASSWORD_RE.match(url)
    if match is None or not match.group(2):
        return []
    return list({match.group(2), unquote(match.group(2))})


def _alias(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Validated configuration; built once at start and passed explicitly."""

    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        frozen=True,
    )

    # --- storage -------------------------------------------------------------
    database_url: Annotated[str, Field(validation_alias=_alias("DATABASE_URL", "database_url"))] = (
        DEFAULT_DATABASE_URL
    )

    # --- HubSpot ---------------------------------------------------------------
    hubspot_token: Annotated[
        SecretStr | None, Field(validation_alias=_alias("HUBSPOT_TOKEN", "hubspot_token"))
    ] = None
    hubspot_token_file: Annotated[
        Path | None, Field(validation_alias=_alias("HUBSPOT_TOKEN_FILE", "hubspot_token_file"))
    ] = None
    hubspot_base_url: Annotated[
        str, Field(validation_alias=_alias("HUBSPOT_BASE_URL", "hubspot_base_url"))
    ] = "https://api.hubapi.com"
    hubspot_write_mode: Annotated[
        Literal["batch", "single"],
        Field(validation_alias=_alias("HUBSPOT_WRITE_MODE", "hubspot_write_mode")),
    ] = "batch"
    hubspot_rate_limit: Annotated[
        str, Field(validation_alias=_alias("HUBSPOT_RATE_LIMIT", "hubspot_rate_limit"))
    ] = "90/10s"
    hubspot_account_timezone: Annotated[
        str,
        Field(validation_alias=_alias("HUBSPOT_ACCOUNT_TIMEZONE", "hubspot_account_timezone")),
    ] = "UTC"
    hubspot_connect_timeout_seconds: Annotated[
        float,
        Field(
            gt=0,
            validation_alias=_alias(
                "HUBSPOT_CONNECT_TIMEOUT_SECONDS", "hubspot_connect_timeout_seconds"
            ),
        ),
    ] = 5.0
    hubspot_read_timeout_seconds: Annotated[
        float,
        Field(
            gt=0,
            validation_alias=_alias("HUBSPOT_READ_TIMEOUT_SECONDS", "hubspot_read_timeout_seconds"),
        ),
    ] = 15.0
    hubspot_total_timeout_seconds: Annotated[
        float,
        Field(
            gt=0,
            validation_alias=_alias(
                "HUBSPOT_TOTAL_TIMEOUT_SECONDS", "hubspot_total_timeout_seconds"
            ),
        ),
    ] = 30.0
    hubspot_extra_properties: Annotated[
        dict[str, str],
        NoDecode,
        Field(
            validation_alias=_alias("HUBSPOT_EXTRA_PROPERTIES", "hubspot_extra_properties"),
            description="JSON object: lead field -> HubSpot property, "
            'e.g. {"source": "lead_source"}',
        ),
    ] = Field(default_factory=dict)

    # --- the service -------------------------------------------------------------
    internal_token: Annotated[
        SecretStr | None,
        Field(validation_alias=_alias("LEADSYNC_INTERNAL_TOKEN", "internal_token")),
    ] = None
    log_format: Annotated[
        Literal["console", "json"],
        Field(validation_alias=_alias("LEADSYNC_LOG_FORMAT", "log_format")),
    ] = "console"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        Field(validation_alias=_alias("LEADSYNC_LOG_LEVEL", "log_level")),
    ] = "INFO"
    max_body_bytes: Annotated[
        int, Field(gt=0, validation_alias=_alias("LEADSYNC_MAX_BODY_BYTES", "max_body_bytes"))
    ] = 64 * 1024
    max_header_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=1024 * 1024,
            validation_alias=_alias("LEADSYNC_MAX_HEADER_BYTES", "max_header_bytes"),
        ),
    ] = 16 * 1024

    # --- the sync engine -------------------------------------------------------------
    poll_interval_seconds: Annotated[
        float,
        Field(
            gt=0, validation_alias=_alias("LEADSYNC_POLL_INTERVAL_SECONDS", "poll_interval_seconds")
        ),
    ] = 5.0
    wakeups_enabled: Annotated[
        bool, Field(validation_alias=_alias("LEADSYNC_WAKEUPS", "wakeups_enabled"))
    ] = True
    lease_seconds: Annotated[
        float, Field(gt=0, validation_alias=_alias("LEADSYNC_LEASE_SECONDS", "lease_seconds"))
    ] = 60.0
    batch_size: Annotated[
        int, Field(ge=1, le=100, validation_alias=_alias("LEADSYNC_BATCH_SIZE", "batch_size"))
    ] = 100
    max_inflight_batches: Annotated[
        int,
        Field(
            ge=1,
            le=64,
            validation_alias=_alias("LEADSYNC_MAX_INFLIGHT_BATCHES", "max_inflight_batches"),
        ),
    ] = 4
    retry_base_seconds: Annotated[
        float,
        Field(gt=0, validation_alias=_alias("LEADSYNC_RETRY_BASE_SECONDS", "retry_base_seconds")),
    ] = 2.0
    retry_cap_seconds: Annotated[
        float,
        Field(gt=0, validation_alias=_alias("LEADSYNC_RETRY_CAP_SECONDS", "retry_cap_seconds")),
    ] = 900.0
    max_attempts: Annotated[
        int, Field(ge=1, validation_alias=_alias("LEADSYNC_MAX_ATTEMPTS", "max_attempts"))
    ] = 10
    pause_cap_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=86400,
            validation_alias=_alias("LEADSYNC_PAUSE_CAP_SECONDS", "pause_cap_seconds"),
            description="longest account-wide pause a 429's Retry-After can ask for",
        ),
    ] = 300.0
    reconcile_after_seconds: Annotated[
        float,
        Field(
            ge=0,
            validation_alias=_alias("LEADSYNC_RECONCILE_AFTER_SECONDS", "reconcile_after_seconds"),
        ),
    ] = 3600.0
    reconcile_interval_seconds: Annotated[
        float,
        Field(
            gt=0,
            validation_alias=_alias(
                "LEADSYNC_RECONCILE_INTERVAL_SECONDS", "reconcile_interval_seconds"
            ),
        ),
    ] = 60.0

    history_days: Annotated[
        int,
        Field(
            ge=1,
            le=3650,
            validation_alias=_alias("LEADSYNC_HISTORY_DAYS", "history_days"),
            description="days each lead's sync history is kept",
        ),
    ] = 30

    # --- privacy (docs/privacy.md) ----------------------------------------------------
    erasure_key: Annotated[
        SecretStr | None,
        Field(
            validation_alias=_alias("LEADSYNC_ERASURE_KEY", "erasure_key"),
            description="secret key of the email hash an erasure keeps (HMAC-SHA256)",
        ),
    ] = None
    erasure_key_file: Annotated[
        Path | None,
        Field(
            validation_alias=_alias("LEADSYNC_ERASURE_KEY_FILE", "erasure_key_file"),
            description="a file holding LEADSYNC_ERASURE_KEY (wins over the variable)",
        ),
    ] = None
    erasure_confirm_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=86400,
            validation_alias=_alias("LEADSYNC_ERASURE_CONFIRM_SECONDS", "erasure_confirm_seconds"),
            description="how long after a request a second GDPR delete follows when a write "
            "of the address was in flight or recent (0: never)",
        ),
    ] = 120.0
    retention_days: Annotated[
        int | None,
        Field(
            ge=1,
            le=36500,
            validation_alias=_alias("LEADSYNC_RETENTION_DAYS", "retention_days"),
            description="days a finished lead keeps its personal data (unset: kept)",
        ),
    ] = None

    # --- the operator console ----------------------------------------------------------
    hubspot_portal_id: Annotated[
        int | None,
        Field(
            ge=1,
            le=10**15,
            validation_alias=_alias("HUBSPOT_PORTAL_ID", "hubspot_portal_id"),
            description="the HubSpot account id, for links to contacts",
        ),
    ] = None
    console_session_seconds: Annotated[
        int,
        Field(
            ge=60,
            le=7 * 24 * 3600,
            validation_alias=_alias("LEADSYNC_CONSOLE_SESSION_SECONDS", "console_session_seconds"),
            description="how long a console login lasts",
        ),
    ] = 8 * 3600

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        async_database_url(value)
        return value

    @field_validator("hubspot_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        return str(RateLimit.parse(value))

    @field_validator("hubspot_extra_properties", mode="before")
    @classmethod
    def _parse_extra_properties(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg})") from None
        return value

    @field_validator("hubspot_account_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("hubspot_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("hubspot_token_file")
    @classmethod
    def _check_token_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("erasure_key_file")
    @classmethod
    def _check_erasure_key_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("erasure_key")
    @classmethod
    def _check_erasure_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ERASURE_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_ERASURE_KEY_LENGTH} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @field_validator("internal_token")
    @classmethod
    def _check_internal_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_INTERNAL_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_INTERNAL_TOKEN_LENGTH} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @model_validator(mode="after")
    def _check_lease_covers_a_call(self) -> Settings:
        needed = self.hubspot_total_timeout_seconds + LEASE_MARGIN_SECONDS
        if self.lease_seconds < needed:
            raise ValueError(
                f"LEADSYNC_LEASE_SECONDS ({self.lease_seconds:g}) must be at least "
                f"HUBSPOT_TOTAL_TIMEOUT_SECONDS ({self.hubspot_total_timeout_seconds:g}) + "
                f"{LEASE_MARGIN_SECONDS:g}: a claim must outlast one whole HubSpot call; "
                "raise the lease or lower the timeout"
            )
        return self

    @property
    def rate_limit(self) -> RateLimit:
        """The shared HubSpot request budget."""
        return RateLimit.parse(self.hubspot_rate_limit)

    @property
    def async_database_url(self) -> str:
        """The SQLAlchemy URL with the async driver."""
        return async_database_url(self.database_url)

    @property
    def is_postgres(self) -> bool:
        """Whether the configured database is PostgreSQL."""
        return self.async_database_url.startswith("postgresql")

    @property
    def account_zone(self) -> ZoneInfo:
        """The HubSpot account's time zone, for the daily limit's reset."""
        return ZoneInfo(self.hubspot_account_timezone)

    def read_hubspot_token(self) -> str | None:
        """Return the current HubSpot token; the file is re-read on every call (rotation)."""
        if self.hubspot_token_file is not None:
            try:
                text = self.hubspot_token_file.read_text(encoding="utf-8").strip()
            except OSError:
                text = ""
            if text:
                return text
        if self.hubspot_token is not None:
            return self.hubspot_token.get_secret_value()
        return None

    def read_erasure_key(self) -> bytes | None:
        """Return the erasure key (the file, re-read on every call, wins); None if unset.

        A key shorter than MIN_ERASURE_KEY_LENGTH in the file counts as unset."""
        if self.erasure_key_file is not None:
            try:
                text = self.erasure_key_file.read_text(encoding="utf-8").strip()
            except OSError:
                text = ""
            if len(text) >= MIN_ERASURE_KEY_LENGTH:
                return text.encode("utf-8")
        if self.erasure_key is not None:
            return self.erasure_key.get_secret_value().encode("utf-8")
        return None

    def secrets(self) -> list[str]:
        """Every secret value currently configured, for log and error redaction."""
        values = [self.read_hubspot_token()]
        if self.hubspot_token is not None:
            values.append(self.hubspot_token.get_secret_value())
        if self.internal_token is not None:
            values.append(self.internal_token.get_secret_value())
        erasure_key = self.read_erasure_key()
        if erasure_key is not None:
            values.append(erasure_key.decode("utf-8"))
        values.extend(_database_password(self.database_url))
        return [v for v in values if v]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The database URL may carry a password; SecretStr fields already mask themselves.
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                value = redact_database_url(value)
            yield name, value


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable and never the value."""


_ENV_NAMES = {
    name: next(
        (
            c
            for c in getattr(f.validation_alias, "choices", [])
            if isinstance(c, str) and c.isupper()
        ),
        name.upper(),
    )
    for name, f in Settings.model_fields.items()
}


def env_name(field: str) -> str:
    """Return the environment variable that sets a Settings field."""
    return _ENV_NAMES.get(field, field.upper())


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment, turning validation errors into one clear ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            if not err["loc"]:  # a rule across fields: its message names the variables
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            loc = str(err["loc"][0])
            field = next(
                (
                    n
                    for n, f in Settings.model_fields.items()
                    if loc in (n, env_name(n)) or loc in getattr(f.validation_alias, "choices", [])
                ),
                loc,
            )
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{env_name(field)}: {msg}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
