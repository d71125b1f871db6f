"""Sandbox configuration: every knob of the fake HubSpot, validated and immutable."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from leadsync.config import RateLimit

CONTACTS_PATH = "/crm/v3/objects/contacts"
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105 - a public, sandbox-only token
MAX_BATCH_INPUTS = 100

# HubSpot's default contact properties the sandbox accepts; anything else needs
# `extra_properties`, as a custom property must first be created in a real portal.
KNOWN_PROPERTIES = frozenset(
    {
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "message",
        "lifecyclestage",
        "hs_lead_status",
        "website",
        "city",
        "country",
        "jobtitle",
    }
)

# Set by HubSpot itself; a write to them is refused as HubSpot does.
READ_ONLY_PROPERTIES = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})

_OFF = {"", "none", "off", "unlimited", "0"}


def parse_rate_limit(value: object) -> RateLimit | None:
    """Turn `190/10s`, a RateLimit, or none/off into a RateLimit or None (unthrottled)."""
    if value is None or isinstance(value, RateLimit):
        return value
    if isinstance(value, str):
        return None if value.strip().lower() in _OFF else RateLimit.parse(value)
    if isinstance(value, dict):
        return RateLimit(count=int(value["count"]), window_seconds=float(value["window_seconds"]))
    raise ValueError(f"expected COUNT/WINDOW such as '190/10s' or 'none', got {value!r}")


class SandboxConfig(BaseModel):
    """Behaviour of the sandbox: tokens, limits, faults and validation rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    tokens: frozenset[str] = frozenset({DEFAULT_TOKEN})
    rate_limit: RateLimit | None = RateLimit(count=190, window_seconds=10.0)
    daily_limit: int | None = Field(default=1_000_000, ge=1)
    retry_after: bool = True
    search_rate_limit: RateLimit | None = RateLimit(count=5, window_seconds=1.0)
    search_lag_ms: float = Field(default=0.0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    fault_5xx: float = Field(default=0.0, ge=0, le=1)
    fault_timeout: float = Field(default=0.0, ge=0, le=1)
    fault_drop: float = Field(default=0.0, ge=0, le=1)
    hang_seconds: float = Field(default=120.0, gt=0)
    invalid_batch: Literal["whole", "per-input"] = "whole"
    reject_emails: str | None = None
    extra_properties: frozenset[str] = frozenset()
    seed: int | None = None

    @field_validator("rate_limit", "search_rate_limit", mode="before")
    @classmethod
    def _parse_rate(cls, value: object) -> RateLimit | None:
        return parse_rate_limit(value)

    @field_validator("reject_emails")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value or None

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, value: frozenset[str]) -> frozenset[str]:
        if any(not token.strip() for token in value):
            raise ValueError("tokens must be non-empty")
        return value

    @field_serializer("rate_limit", "search_rate_limit")
    def _show_rate(self, value: RateLimit | None) -> str | None:
        return None if value is None else str(value)

    @field_serializer("tokens", "extra_properties")
    def _show_set(self, value: frozenset[str]) -> list[str]:
        return sorted(value)

    @cached_property
    def reject_pattern(self) -> re.Pattern[str] | None:
        """The compiled `reject_emails` regex, if any."""
        return re.compile(self.reject_emails) if self.reject_emails else None

    @cached_property
    def writable_properties(self) -> frozenset[str]:
        """Every property name a request may write."""
        return KNOWN_PROPERTIES | self.extra_properties

    def patched(self, changes: dict[str, Any]) -> SandboxConfig:
        """Return a copy with `changes` applied; `add_tokens`/`revoke_tokens` edit the token set."""
        changes = dict(changes)
        tokens = set(changes.pop("tokens", self.tokens))
        tokens |= set(changes.pop("add_tokens", ()))
        tokens -= set(changes.pop("revoke_tokens", ()))
        merged = self.model_dump() | changes | {"tokens": tokens}
        return SandboxConfig.model_validate(merged)
