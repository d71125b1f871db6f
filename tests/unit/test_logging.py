"""Log redaction: known secrets and bearer credentials never reach a log line."""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote

import pytest

from leadsync.logging import REDACTED, SecretRedactor, configure_logging, get_logger
from leadsync.redact import scrub

SECRET = "pat-na1-0123456789abcdef"
OTHER = "internal-token-abcdef0123"


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture(params=["console", "json"])
def log_format(request: pytest.FixtureRequest) -> str:
    fmt: str = request.param
    return fmt


def configure(log_format: str, secrets: list[str]) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="DEBUG", secrets=lambda: secrets, stream=stream)
    return stream


def test_secret_in_any_value_is_redacted(log_format: str) -> None:
    stream = configure(log_format, [SECRET, OTHER])

    get_logger("test").info(
        f"event with {SECRET}",
        token=SECRET,
        nested={"headers": [f"x-token: {OTHER}"], "ok": 1},
        pair=("a", SECRET),
    )

    output = stream.getvalue()
    assert SECRET not in output
    assert OTHER not in output
    assert REDACTED in output
    assert "x-token" in output  # the rest of the line survives


def test_json_lines_stay_valid_json() -> None:
    stream = configure("json", [SECRET])

    get_logger("leadsync.test").info("hubspot.batch.upserted", lead_id=7, token=SECRET)

    record = json.loads(stream.getvalue().strip())
    assert record["event"] == "hubspot.batch.upserted"
    assert record["lead_id"] == 7
    assert record["token"] == REDACTED
    assert record["level"] == "info"
    assert record["logger"] == "leadsync.test"


def test_bearer_credentials_are_redacted_even_when_unknown(log_format: str) -> None:
    stream = configure(log_format, [])

    get_logger("test").warning("request", authorization="Bearer some.unknown-jwt_value")

    output = stream.getvalue()
    assert "some.unknown-jwt_value" not in output
    assert f"Bearer {REDACTED}" in output


def test_exception_messages_and_tracebacks_are_redacted(log_format: str) -> None:
    stream = configure(log_format, [SECRET])

    try:
        raise RuntimeError(f"HubSpot said no to {SECRET}")
    except RuntimeError as exc:
        get_logger("test").exception("hubspot.failed", error=exc)

    output = stream.getvalue()
    assert "RuntimeError" in output
    assert SECRET not in output


def test_stdlib_and_uvicorn_records_are_redacted(log_format: str) -> None:
    stream = configure(log_format, [SECRET])

    logging.getLogger("uvicorn.error").error("token %s leaked", SECRET)
    try:
        raise ValueError(SECRET)
    except ValueError:
        logging.getLogger("some.library").exception("boom")

    output = stream.getvalue()
    assert "leaked" in output
    assert "boom" in output
    assert SECRET not in output


def test_secrets_are_read_at_log_time_so_a_rotated_token_is_redacted() -> None:
    secrets = [SECRET]
    stream = configure("console", secrets)
    rotated = "pat-na1-rotated-fedcba9876"
    secrets.append(rotated)

    get_logger("test").info("after rotation", token=rotated)

    assert rotated not in stream.getvalue()


def test_a_secret_containing_another_is_redacted_whole() -> None:
    redactor = SecretRedactor(lambda: ["abcdefgh", "abcdefgh-and-a-longer-tail"])

    scrubbed = redactor.scrub("token=abcdefgh-and-a-longer-tail")

    assert scrubbed == f"token={REDACTED}"


def test_logs_and_hubspot_errors_share_one_scrubber() -> None:
    # The forms a secret takes in a URL or in JSON, and a bearer credential after "=" or "%20",
    # are redacted in log lines exactly as in HubSpot error texts (leadsync/redact.py).
    secret = "pat-na1/abc+def"
    redactor = SecretRedactor(lambda: [secret])
    text = f"url=?t={quote(secret, safe='')} json={secret.replace('/', chr(92) + '/')} bearer=zz9"

    assert redactor.scrub(text) == scrub(text, secrets=[secret])
    assert secret.split("/")[1] not in redactor.scrub(text)
    assert "zz9" not in redactor.scrub(text)


def test_ordinary_words_are_not_shredded_by_tiny_secrets() -> None:
    redactor = SecretRedactor(lambda: ["a", ""])

    assert redactor.scrub("a lead arrived") == "a lead arrived"


def test_level_filters_debug_lines() -> None:
    stream = io.StringIO()
    configure_logging(log_format="console", level="INFO", stream=stream)

    get_logger("test").debug("hidden")
    get_logger("test").info("shown")

    assert "hidden" not in stream.getvalue()
    assert "shown" in stream.getvalue()
