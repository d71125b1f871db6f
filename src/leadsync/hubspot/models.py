"""Typed results of HubSpot contact calls, parsed from HubSpot's JSON and headers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_RATE_HEADERS = {
    "max": "x-hubspot-ratelimit-max",
    "remaining": "x-hubspot-ratelimit-remaining",
    "interval_milliseconds": "x-hubspot-ratelimit-interval-milliseconds",
    "daily": "x-hubspot-ratelimit-daily",
    "daily_remaining": "x-hubspot-ratelimit-daily-remaining",
}


_CATEGORY_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def _header_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    # A garbled header must not poison the shared budget, so anything odd reads as absent.
    return int(number) if math.isfinite(number) and number >= 0 else None


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """HubSpot's `X-HubSpot-RateLimit-*` headers of one response; None where not sent."""

    max: int | None = None
    remaining: int | None = None
    interval_milliseconds: int | None = None
    daily: int | None = None
    daily_remaining: int | None = None

    @property
    def interval_seconds(self) -> float | None:
        """Return the rolling window length in seconds, if HubSpot sent it."""
        ms = self.interval_milliseconds
        return None if ms is None else ms / 1000

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo:
        """Parse the rate-limit headers of a response (header names are case-insensitive)."""
        lowered = {key.lower(): value for key, value in headers.items()}
        values = {name: _header_int(lowered.get(header)) for name, header in _RATE_HEADERS.items()}
        return cls(**values)


def parse_context(value: object) -> dict[str, tuple[str, ...]]:
    """Return HubSpot's `context` object as name -> values, accepting a bare string value."""
    if not isinstance(value, dict):
        return {}
    parsed: dict[str, tuple[str, ...]] = {}
    for key, raw in value.items():
        items = raw if isinstance(raw, list) else [raw]
        parsed[str(key)] = tuple(str(item) for item in items if item is not None)
    return parsed


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", coerce_numbers_to_str=True
    )


class Contact(_Model):
    """A HubSpot contact (`SimplePublicObject`)."""

    id: str = Field(min_length=1)
    properties: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    archived: bool = False
    rate_limit: RateLimitInfo = Field(default_factory=RateLimitInfo, exclude=True)


class UpsertedContact(Contact):
    """One contact created (`new`) or updated by a batch upsert."""

    new: bool = False
    trace_id: str | None = Field(default=None, alias="objectWriteTraceId")

    @property
    def email(self) -> str | None:
        """Return the contact's email, lowercased, as the key that maps it back to leads."""
        value = self.properties.get("email")
        return value.strip().lower() if value else None


@dataclass(frozen=True, slots=True)
class UpsertInput:
    """One contact to upsert by email; `trace_id` (the lead id) ties a 207 error to its lead."""

    email: str
    properties: Mapping[str, str]
    trace_id: str | None = None

    @property
    def id(self) -> str:
        """Return the email as HubSpot's upsert id: trimmed and lowercased, as HubSpot compares."""
        return self.email.strip().lower()

    def to_json(self) -> dict[str, Any]:
        """Return the `SimplePublicObjectBatchInputUpsert` JSON for this input."""
        body: dict[str, Any] = {
            "id": self.id,
            "idProperty": "email",
            "properties": dict(self.properties),
        }
        if self.trace_id is not None:
            body["objectWriteTraceId"] = self.trace_id
        return body


@dataclass(frozen=True, slots=True)
class BatchInputError:
    """One per-input error of a 207 batch response."""

    status: str
    category: str | None
    message: str
    trace_ids: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: object, *, clean: Callable[[str], str]) -> BatchInputError:
        """Parse one entry of a 207's `errors[]`; `clean` scrubs and truncates its message."""
        item = raw if isinstance(raw, dict) else {}
        context = parse_context(item.get("context"))
        # The trace id has been seen both in `context` and on the error itself; accept either.
        own = parse_context({"own": item.get("objectWriteTraceId")}).get("own", ())
        category = item.get("category")
        return cls(
            status=str(item.get("status") or "error"),
            # HubSpot's categories are UPPER_SNAKE words; anything else is not trusted text.
            category=category
            if isinstance(category, str) and _CATEGORY_RE.fullmatch(category)
            else None,
            message=clean(str(item.get("message") or "")),
            trace_ids=tuple(dict.fromkeys([*context.get("objectWriteTraceId", ()), *own])),
            ids=context.get("ids", ()),
            context=context,
        )


@dataclass(frozen=True, slots=True)
class BatchUpsertResult:
    """The outcome of one batch upsert: 200 (all done) or 207 (some inputs failed)."""

    http_status: int
    results: list[UpsertedContact]
    errors: list[BatchInputError]
    status: str | None = None
    rate_limit: RateLimitInfo = field(default_factory=RateLimitInfo)

    @property
    def by_email(self) -> dict[str, UpsertedContact]:
        """Return the upserted contacts keyed by their lowercased email."""
        return {r.email: r for r in self.results if r.email is not None}
