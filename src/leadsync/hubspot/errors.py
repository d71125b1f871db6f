"""Classified HubSpot failures; every error text goes through the scrubber (redact.py)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypedDict, Unpack

import httpx

from leadsync.hubspot.models import RateLimitInfo, parse_context
from leadsync.redact import scrub

ERROR_TEXT_LIMIT = 1000
LOCKED_MIN_WAIT_SECONDS = 2.0
# A Retry-After beyond this is read as this (about a year); callers cap it far lower. It only
# keeps absurd values (1e308, a date in the year 9999) from overflowing date arithmetic.
RETRY_AFTER_CEILING_SECONDS = 366 * 24 * 3600.0
# The 4xx statuses that say "not now" rather than "never" (docs/hubspot.md, "Errors"):
# timeout, a conflict with a concurrent write, a locked record, a spent rate limit.
TRANSIENT_4XX_STATUSES = frozenset({408, 409, 423, 429})
AUTH_STATUSES = frozenset({401, 403})
# Categories of per-input errors (a 207's errors[]) that say "not now".
TRANSIENT_CATEGORIES = frozenset(
    {"RATE_LIMITS", "RATE_LIMIT", "CONFLICT", "LOCKED", "TIMEOUT", "INTERNAL_ERROR"}
)
AUTH_CATEGORIES = frozenset({"INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION", "MISSING_SCOPES"})

_EXISTING_ID_RE = re.compile(r"Existing ID:\s*(\d+)")
_DUPLICATES_RE = re.compile(r"Duplicate IDs found in batch input:\s*\[([^\]]*)\]")
_ERROR_CODE_RE = re.compile(r"\"error\"\s*:\s*\"([A-Z][A-Z0-9_]{1,63})\"")
_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def truncate_error(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """Return text cut to at most `limit` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a `Retry-After` header asks for (delta seconds or an HTTP date).

    Garbage and negative numbers read as absent; a date in the past as 0; anything longer
    than RETRY_AFTER_CEILING_SECONDS as that ceiling. Callers cap it further (docs/hubspot.md).
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CEILING_SECONDS)  # "inf" and 400 nines: the ceiling


def is_transient_status(status: int) -> bool:
    """Return whether an HTTP status says "try again later" (5xx, 408, 409, 423, 429, 3xx)."""
    return status >= 500 or status in TRANSIENT_4XX_STATUSES or status < 400


class InputVerdict(StrEnum):
    """How one per-input error of a batch response is treated."""

    TRANSIENT = "transient"  # retried with backoff
    PERMANENT = "permanent"  # FAILED with HubSpot's message


def classify_input_error(status: str | None, category: str | None) -> tuple[InputVerdict, int]:
    """Classify a 207's per-input error by HubSpot's own status and category.

    Returns the verdict and the HTTP status to record (HubSpot's, or 400 when it sent none).
    A credential error on one input is transient: the token's trouble, not the lead's.
    """
    code = int(status) if status is not None and status.strip().isdigit() else None
    recorded = code if code is not None and 100 <= code <= 599 else 400
    transient = (
        (code is not None and (is_transient_status(code) or code in AUTH_STATUSES))
        or category in TRANSIENT_CATEGORIES
        or category in AUTH_CATEGORIES
    )
    if code is not None and 200 <= code < 300:
        transient = False  # an "error" with a 2xx status is not something a retry fixes
    return (InputVerdict.TRANSIENT if transient else InputVerdict.PERMANENT), recorded


def _short(value: str | None, *, secrets: list[str | None]) -> str | None:
    # Category and correlation id are short codes; anything longer is not what HubSpot sends.
    return truncate_error(scrub(value, secrets=secrets), 64) if value else None


class ErrorFields(TypedDict, total=False):
    """The fields every HubSpotError takes; `secrets` is used to scrub and never stored."""

    http_status: int | None
    category: str | None
    correlation_id: str | None
    rate_limit: RateLimitInfo
    retry_after_seconds: float | None
    secrets: Iterable[str | None]


class HubSpotError(Exception):
    """A HubSpot call failed; the message is scrubbed of secrets and truncated."""

    def __init__(self, message: str, **fields: Unpack[ErrorFields]) -> None:
        secrets = list(fields.get("secrets", ()))
        self.message = truncate_error(scrub(message, secrets=secrets))
        self.http_status = fields.get("http_status")
        self.category = _short(fields.get("category"), secrets=secrets)
        self.correlation_id = _short(fields.get("correlation_id"), secrets=secrets)
        self.rate_limit = fields.get("rate_limit", RateLimitInfo())
        self.retry_after_seconds = fields.get("retry_after_seconds")
        # Only the scrubbed text reaches args, so pickling and tracebacks cannot leak a secret.
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.http_status is None:
            return self.message
        head = f"HTTP {self.http_status}" + (f" {self.category}" if self.category else "")
        return truncate_error(f"{head}: {self.message}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(http_status={self.http_status!r}, "
            f"category={self.category!r}, message={self.message!r})"
        )


class AuthError(HubSpotError):
    """401/403 or an unusable token: a credential problem, not a problem of one lead."""


class RateLimitedError(HubSpotError):
    """429: one shared budget is spent; wait for `retry_after_seconds` or the window."""

    def __init__(
        self,
        message: str,
        *,
        policy_name: str | None = None,
        interval_seconds: float | None = None,
        **fields: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        self.policy_name = policy_name if policy_name and _NAME_RE.fullmatch(policy_name) else None
        self.interval_seconds = interval_seconds

    @property
    def is_daily(self) -> bool:
        """Return whether the daily limit was hit (no retry before the account's midnight)."""
        return self.policy_name == "DAILY"


class TransientError(HubSpotError):
    """5xx, 423, a timeout, a broken connection or an unreadable 2xx: retry with backoff."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "server",
        min_wait_seconds: float | None = None,
        **fields: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        self.reason = reason
        self.min_wait_seconds = min_wait_seconds


class ConflictError(HubSpotError):
    """409: the contact exists; `existing_id` is its id when HubSpot's message names it."""

    def __init__(
        self, message: str, *, existing_id: str | None = None, **fields: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **fields)
        self.existing_id = existing_id


class PermanentError(HubSpotError):
    """Any other 4xx: the request itself is wrong, retrying it cannot help."""

    def __init__(
        self,
        message: str,
        *,
        error_codes: tuple[str, ...] = (),
        duplicate_ids: tuple[str, ...] = (),
        context: Mapping[str, tuple[str, ...]] | None = None,
        **fields: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        secrets = list(fields.get("secrets", ()))
        self.error_codes = error_codes
        self.duplicate_ids = tuple(scrub(i, secrets=secrets) for i in duplicate_ids)
        self.context = {
            key: tuple(truncate_error(scrub(v, secrets=secrets), 200) for v in values)
            for key, values in (context or {}).items()
        }


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def error_from_response(
    *,
    status: int,
    content: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str | None],
    now: datetime | None = None,
) -> HubSpotError:
    """Classify a non-2xx HubSpot response into exactly one HubSpotError."""
    body = _json_object(content)
    lowered = {key.lower(): value for key, value in headers.items()}
    raw_text = content.decode("utf-8", errors="replace").strip()
    message = _text(body.get("message")) or raw_text or f"HTTP {status} without a body"
    rate_limit = RateLimitInfo.from_headers(headers)
    fields: ErrorFields = {
        "http_status": status,
        "category": _text(body.get("category")) or _text(body.get("errorType")),
        "correlation_id": _text(body.get("correlationId"))
        or lowered.get("x-hubspot-correlation-id"),
        "rate_limit": rate_limit,
        "retry_after_seconds": parse_retry_after(lowered.get("retry-after"), now=now),
        "secrets": list(secrets),
    }
    if status in (401, 403):
        return AuthError(message, **fields)
    if status == 429:
        return RateLimitedError(
            message,
            policy_name=_text(body.get("policyName")),
            interval_seconds=rate_limit.interval_seconds,
            **fields,
        )
    if status == 409:
        match = _EXISTING_ID_RE.search(message)
        return ConflictError(message, existing_id=match.group(1) if match else None, **fields)
    if status == 423:
        wait = max(LOCKED_MIN_WAIT_SECONDS, fields.get("retry_after_seconds") or 0.0)
        return TransientError(message, reason="locked", min_wait_seconds=wait, **fields)
    if is_transient_status(status):
        # A 3xx means a proxy or base URL is wrong; retrying keeps the lead until that is fixed.
        return TransientError(message, reason="server", **fields)
    return _permanent(message, body=body, fields=fields)


def _permanent(message: str, *, body: dict[str, Any], fields: ErrorFields) -> PermanentError:
    context = parse_context(body.get("context"))
    duplicates: tuple[str, ...] = ()
    match = _DUPLICATES_RE.search(message)
    if match or "duplicate" in message.lower():
        # `context.ids` is exact; the message's list is the fallback when context is absent.
        listed = match.group(1).split(",") if match else []
        duplicates = context.get("ids") or tuple(p.strip() for p in listed if p.strip())
    codes = list(_ERROR_CODE_RE.findall(message))
    details = body.get("errors")
    for detail in details if isinstance(details, list) else []:
        code = detail.get("code") if isinstance(detail, dict) else None
        if isinstance(code, str) and _NAME_RE.fullmatch(code):
            codes.append(code)
    return PermanentError(
        message,
        error_codes=tuple(dict.fromkeys(codes)),
        duplicate_ids=duplicates,
        context=context,
        **fields,
    )


def error_from_exception(
    exc: Exception, *, operation: str, total_timeout: float, secrets: Iterable[str | None]
) -> HubSpotError:
    """Classify a failure to get any response (timeouts, refused or reset connections)."""
    if isinstance(exc, TimeoutError):
        text = f"{operation}: no complete response within {total_timeout:g}s"
        return TransientError(text, reason="total_timeout", secrets=secrets)
    # httpx messages name the URL at most, never the headers, so they are safe to keep.
    detail = str(exc).strip()
    text = f"{operation}: {type(exc).__name__}" + (f": {detail}" if detail else "")
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(text, reason="timeout", secrets=secrets)
    if isinstance(exc, httpx.InvalidURL):
        return PermanentError(text, secrets=secrets)
    return TransientError(text, reason="connection", secrets=secrets)
