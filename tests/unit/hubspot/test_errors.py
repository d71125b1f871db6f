"""Error classification, scrubbing, truncation and header parsing, without HTTP."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadsync.hubspot import (
    AuthError,
    ConflictError,
    HubSpotError,
    PermanentError,
    RateLimitedError,
    RateLimitInfo,
    TransientError,
    parse_retry_after,
    truncate_error,
)
from leadsync.hubspot.errors import (
    RETRY_AFTER_CEILING_SECONDS,
    InputVerdict,
    classify_input_error,
    error_from_response,
)
from leadsync.redact import scrub

NOW = datetime(2026, 8, 21, 10, 0, 0, tzinfo=UTC)
TOKEN = "pat-na1-aaaa-bbbb"


def classify(status: int, body: Any = None, **headers: str) -> HubSpotError:
    content = b"" if body is None else json.dumps(body).encode()
    return error_from_response(
        status=status, content=content, headers=headers, secrets=[TOKEN], now=NOW
    )


# --- scrub / truncate --------------------------------------------------------------------


def test_scrub_removes_secrets_and_their_encoded_forms() -> None:
    secret = "abc/def+ghi"
    text = f"raw {secret} json abc\\/def+ghi url abc%2Fdef%2Bghi"

    assert scrub(text, secrets=[secret]) == "raw [REDACTED] json [REDACTED] url [REDACTED]"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer unknown-token-123",
        "authorization=bearer unknown-token-123",
        "{'Authorization': 'BEARER unknown-token-123'}",
        "Bearer%20unknown-token-123",
        "Bearer:unknown-token-123",
    ],
)
def test_scrub_redacts_any_bearer_credential(text: str) -> None:
    scrubbed = scrub(text, secrets=[])

    assert "unknown-token-123" not in scrubbed
    assert "[REDACTED]" in scrubbed


def test_scrub_is_idempotent_and_ignores_empty_secrets() -> None:
    once = scrub(f"Bearer {TOKEN} and {TOKEN}", secrets=[TOKEN, "", None, "  "])

    assert once == "Bearer [REDACTED] and [REDACTED]"
    assert scrub(once, secrets=[TOKEN]) == once


def test_truncate_error_limits_length() -> None:
    assert truncate_error("short") == "short"
    assert truncate_error("x" * 1000) == "x" * 1000
    cut = truncate_error("x" * 5000)
    assert len(cut) == 1000
    assert cut.endswith("…")
    assert len(truncate_error("y" * 50, 10)) == 10


def test_long_error_text_is_truncated_in_message_and_str() -> None:
    error = classify(400, {"message": "m" * 5000, "category": "VALIDATION_ERROR"})

    assert len(error.message) == 1000
    assert len(str(error)) <= 1000
    assert str(error).startswith("HTTP 400 VALIDATION_ERROR: ")


def test_token_cut_in_half_by_truncation_does_not_survive() -> None:
    # Scrubbing happens before truncation, so no prefix of the token is left at the cut.
    error = classify(400, {"message": "x" * 990 + TOKEN})

    assert "pat-na1" not in error.message


def test_error_pickles_without_secrets() -> None:
    error = classify(401, {"message": f"bad {TOKEN}", "category": "INVALID_AUTHENTICATION"})

    clone = pickle.loads(pickle.dumps(error))

    assert TOKEN.encode() not in pickle.dumps(error)
    assert isinstance(clone, AuthError)
    assert clone.http_status == 401
    assert clone.message == "bad [REDACTED]"


# --- Retry-After and rate-limit headers --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("Fri, 21 Aug 2026 10:01:30 GMT", 90.0),
        ("Fri, 21 Aug 2026 09:59:00 GMT", 0.0),
        ("-3", None),
        ("nan", None),
        ("inf", RETRY_AFTER_CEILING_SECONDS),
        ("soon", None),
        ("", None),
        (None, None),
        ("31536000", 31536000.0),  # a year: honoured here, capped by the engine
        ("1e12", RETRY_AFTER_CEILING_SECONDS),
        ("1e308", RETRY_AFTER_CEILING_SECONDS),
        ("9" * 400, RETRY_AFTER_CEILING_SECONDS),
        ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_CEILING_SECONDS),
        ("Mon, 32 Foo 2026 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@given(st.one_of(st.text(max_size=60), st.from_regex(r"-?[0-9]{1,400}(\.[0-9]+)?(e[0-9]+)?")))
def test_parse_retry_after_never_raises_and_stays_bounded(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or 0.0 <= seconds <= RETRY_AFTER_CEILING_SECONDS
    if seconds is not None:  # whatever came back fits a timestamp
        assert NOW + dt.timedelta(seconds=seconds) > NOW - dt.timedelta(seconds=1)


# --- per-input errors of a 207 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "category", "verdict", "recorded"),
    [
        ("500", "INTERNAL_ERROR", InputVerdict.TRANSIENT, 500),
        ("503", None, InputVerdict.TRANSIENT, 503),
        ("429", "RATE_LIMITS", InputVerdict.TRANSIENT, 429),
        ("409", "CONFLICT", InputVerdict.TRANSIENT, 409),
        ("423", None, InputVerdict.TRANSIENT, 423),
        ("error", "RATE_LIMITS", InputVerdict.TRANSIENT, 400),
        ("error", "CONFLICT", InputVerdict.TRANSIENT, 400),
        ("403", "MISSING_SCOPES", InputVerdict.TRANSIENT, 403),
        ("400", "VALIDATION_ERROR", InputVerdict.PERMANENT, 400),
        ("error", "VALIDATION_ERROR", InputVerdict.PERMANENT, 400),
        ("404", "OBJECT_NOT_FOUND", InputVerdict.PERMANENT, 404),
        ("error", None, InputVerdict.PERMANENT, 400),
        (None, None, InputVerdict.PERMANENT, 400),
        ("999", None, InputVerdict.TRANSIENT, 400),
    ],
)
def test_per_input_errors_are_classified_by_hubspots_status_and_category(
    status: str | None, category: str | None, verdict: InputVerdict, recorded: int
) -> None:
    assert classify_input_error(status, category) == (verdict, recorded)


def test_rate_limit_info_parses_headers_case_insensitively() -> None:
    info = RateLimitInfo.from_headers(
        {
            "x-hubspot-ratelimit-max": "100",
            "X-HUBSPOT-RATELIMIT-REMAINING": "99",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "garbage",
        }
    )

    assert info == RateLimitInfo(
        max=100, remaining=99, interval_milliseconds=10000, daily=250000, daily_remaining=None
    )
    assert info.interval_seconds == 10.0
    assert RateLimitInfo.from_headers({}).interval_seconds is None


# --- classification table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (302, TransientError),
        (400, PermanentError),
        (401, AuthError),
        (403, AuthError),
        (404, PermanentError),
        (405, PermanentError),
        (408, TransientError),
        (409, ConflictError),
        (413, PermanentError),
        (422, PermanentError),
        (423, TransientError),
        (429, RateLimitedError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
        (521, TransientError),
    ],
)
def test_status_classification(status: int, kind: type[HubSpotError]) -> None:
    error = classify(status, {"message": "x"})

    assert type(error) is kind
    assert error.http_status == status


def test_429_fields() -> None:
    error = classify(
        429,
        {"message": "You have reached your secondly limit.", "policyName": "SECONDLY"},
        **{"Retry-After": "1", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"},
    )

    assert isinstance(error, RateLimitedError)
    assert error.policy_name == "SECONDLY"
    assert error.retry_after_seconds == 1.0
    assert error.interval_seconds == 1.0
    assert not error.is_daily


def test_429_odd_policy_name_is_dropped() -> None:
    error = classify(429, {"message": "x", "policyName": f"<{TOKEN}>"})

    assert isinstance(error, RateLimitedError)
    assert error.policy_name is None


def test_423_honours_a_longer_retry_after() -> None:
    error = classify(423, {"message": "locked"}, **{"Retry-After": "9"})

    assert isinstance(error, TransientError)
    assert error.min_wait_seconds == 9.0


@pytest.mark.parametrize(
    ("message", "existing_id"),
    [
        ("Contact already exists. Existing ID: 37765128953", "37765128953"),
        ("Contact already exists. Existing ID:42", "42"),
        ("Contact already exists.", None),
        ("Existing ID: not-a-number", None),
    ],
)
def test_conflict_existing_id(message: str, existing_id: str | None) -> None:
    error = classify(409, {"message": message, "category": "CONFLICT"})

    assert isinstance(error, ConflictError)
    assert error.existing_id == existing_id


def test_duplicate_ids_from_message_when_context_is_missing() -> None:
    message = "Duplicate IDs found in batch input: [a@x.com, b@x.com]. IDs must be unique"
    error = classify(400, {"message": message, "category": "VALIDATION_ERROR"})

    assert isinstance(error, PermanentError)
    assert error.duplicate_ids == ("a@x.com", "b@x.com")


def test_error_codes_from_inner_errors_list() -> None:
    body = {
        "message": "Invalid input",
        "category": "VALIDATION_ERROR",
        "errors": [{"message": "bad", "code": "INVALID_EMAIL"}, {"message": "no code"}],
        "context": {"propertyName": "email"},
    }
    error = classify(400, body)

    assert isinstance(error, PermanentError)
    assert error.error_codes == ("INVALID_EMAIL",)
    assert error.duplicate_ids == ()
    assert error.context == {"propertyName": ("email",)}


def test_correlation_id_from_body_or_header() -> None:
    from_body = classify(500, {"message": "x", "correlationId": "abc"})
    from_header = classify(500, None, **{"X-HubSpot-Correlation-Id": "def"})

    assert from_body.correlation_id == "abc"
    assert from_header.correlation_id == "def"


def test_repr_names_class_status_and_category() -> None:
    error = classify(403, {"message": "no scopes", "category": "MISSING_SCOPES"})

    assert repr(error) == (
        "AuthError(http_status=403, category='MISSING_SCOPES', message='no scopes')"
    )
    assert str(error) == "HTTP 403 MISSING_SCOPES: no scopes"


def test_error_without_status_prints_only_its_message() -> None:
    error = TransientError("create: ReadTimeout: timed out", reason="timeout")

    assert str(error) == "create: ReadTimeout: timed out"
    assert error.rate_limit == RateLimitInfo()
