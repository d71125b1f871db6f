"""One logging pipeline: JSON lines, stdlib and uvicorn records, tracebacks, all redacted.

tests/unit/test_logging.py covers the redactor on structlog events; this module covers
everything else that ends up in the same stream.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import logging.config
import re
from pathlib import Path
from typing import Any

import pytest
from uvicorn.config import LOGGING_CONFIG

from leadsync.logging import REDACTED, configure_logging, get_logger

# Recognisable and far from every frame a traceback shows, so source excerpts cannot hold them.
TOKEN = "pat-na1-REDACTME-5b1f0c2e-9d7a-4e41-b2f3-000000000001"
INTERNAL = "internal-REDACTME-Zq8xK2mN4pL6vB9c"
DB_PASSWORD = "db-REDACTME-Ww3Ee4Rr5Tt6"
SECRETS = (TOKEN, INTERNAL, DB_PASSWORD)
BEARER_TOKEN = f"Bearer {TOKEN}"
SRC = Path(__file__).resolve().parents[2] / "src" / "leadsync"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture(params=["console", "json"])
def log_format(request: pytest.FixtureRequest) -> str:
    fmt: str = request.param
    return fmt


def configure(log_format: str, secrets: tuple[str, ...] = SECRETS) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="DEBUG", secrets=lambda: secrets, stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            pytest.fail(f"line {number} is not one JSON object ({exc}):\n{line}")
        assert isinstance(records[-1], dict)
    return records


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    # Nor any recognisable piece of one (a truncated or wrapped rendering).
    for secret in SECRETS:
        for start in range(len(secret) - 11):
            assert secret[start : start + 12] not in text, f"a piece of {secret[:6]}... leaked"


def assert_bearer_scrubbed(text: str) -> None:
    for match in re.finditer(r"(?i)\bbearer\s+(\S+)", text):
        assert match.group(1).startswith(REDACTED), f"a bearer credential survived: {match[0]}"


# --------------------------------------------------------------------------- JSON lines


def test_json_emits_one_object_per_line_with_dotted_event_names() -> None:
    stream = configure("json")
    log = get_logger("leadsync.engine.worker")

    log.info("sync.lead.synced", lead_id=7, hubspot_id="101", http_status=200, duration_ms=12.5)
    log.warning("sync.lead.failed", lead_id=8, error="line one\nline two\n\ttabbed")
    try:
        raise ValueError("multi\nline\nmessage")
    except ValueError:
        log.exception("sync.batch.crashed", lead_ids=[1, 2])
    logging.getLogger("aiosqlite").warning("a stdlib record\nspanning lines")

    records = json_lines(stream)
    assert [r["event"] for r in records] == [
        "sync.lead.synced",
        "sync.lead.failed",
        "sync.batch.crashed",
        "a stdlib record\nspanning lines",
    ]
    assert records[0]["lead_id"] == 7
    assert records[0]["duration_ms"] == 12.5
    assert records[1]["error"] == "line one\nline two\n\ttabbed"
    assert "ValueError: multi\nline\nmessage" in records[2]["exception"]
    for record in records:
        assert {"event", "level", "logger", "timestamp"} <= set(record)
    assert [r["logger"] for r in records] == ["leadsync.engine.worker"] * 3 + ["aiosqlite"]
    assert [r["level"] for r in records] == ["info", "warning", "error", "warning"]


_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+|\.\{\})+")
_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def logged_events() -> list[tuple[str, int, str]]:
    """Return (file, line, event) of every `log.<level>("...")` call in the package."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _LEVELS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("log", "logger")
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                event = first.value
            elif isinstance(first, ast.JoinedStr):
                event = "".join(
                    str(v.value) if isinstance(v, ast.Constant) else "{}" for v in first.values
                )
            else:
                continue
            found.append((str(path.relative_to(SRC)), node.lineno, event))
    return found


def test_leadsync_logs_dotted_event_names_only() -> None:
    events = logged_events()
    assert len(events) >= 10

    bad = [
        f"{file}:{line}: {event!r}"
        for file, line, event in events
        if not _EVENT_NAME.fullmatch(event)
    ]

    assert not bad, "events must be dotted names like hubspot.batch.upserted:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- stdlib and uvicorn


def test_stdlib_records_go_through_the_same_redacting_pipeline(log_format: str) -> None:
    stream = configure(log_format)

    logging.getLogger("sqlalchemy.engine").warning(
        "connecting to %s", f"postgresql://leadsync:{DB_PASSWORD}@db.internal/leadsync"
    )
    logging.getLogger("httpx").warning("sent headers Authorization: Bearer %s", TOKEN)
    logging.getLogger("some.library").error("internal token %s rejected", INTERNAL)
    logging.getLogger("some.library").error("unknown credential: Bearer eyJhbGciOi.payload.sig")

    output = stream.getvalue()
    assert len(output.splitlines()) == 4 if log_format == "json" else output.count("\n") >= 4
    assert_no_secret(output)
    assert_bearer_scrubbed(output)
    assert "eyJhbGciOi" not in output
    assert "postgresql://leadsync:" + REDACTED + "@db.internal/leadsync" in output
    for name in ("sqlalchemy.engine", "httpx", "some.library"):
        assert name in output
    if log_format == "json":
        assert [r["logger"] for r in json_lines(stream)] == [
            "sqlalchemy.engine",
            "httpx",
            "some.library",
            "some.library",
        ]


def test_uvicorn_loggers_lose_their_handlers_and_go_through_the_pipeline(
    log_format: str,
) -> None:
    # As if uvicorn had configured its own logging first (it does unless log_config=None).
    logging.config.dictConfig(LOGGING_CONFIG)
    assert logging.getLogger("uvicorn.access").handlers
    stream = configure(log_format)

    logging.getLogger("uvicorn.error").error("Exception in ASGI application: Bearer %s", TOKEN)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "10.0.0.7:51234",
        "GET",
        f"/internal/leads?status=FAILED&token={INTERNAL}",
        "1.1",
        200,
    )
    logging.getLogger("uvicorn").info("Started server process [%d]", 4242)

    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        assert logger.handlers == [], f"{name} would print a second, unredacted copy"
        assert logger.propagate
    output = stream.getvalue()
    assert_no_secret(output)
    assert_bearer_scrubbed(output)
    assert "/internal/leads?status=FAILED&token=" + REDACTED in output
    assert "Started server process [4242]" in output
    if log_format == "json":
        records = json_lines(stream)
        assert [r["logger"] for r in records] == ["uvicorn.error", "uvicorn.access", "uvicorn"]
        assert [r["level"] for r in records] == ["error", "info", "info"]
    else:
        assert len(output.splitlines()) == 3


def test_records_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", level="WARNING", secrets=lambda: SECRETS, stream=stream)

    get_logger("leadsync.test").info("sync.lead.synced", lead_id=1)
    logging.getLogger("uvicorn.access").info("GET / 200")
    get_logger("leadsync.test").warning("sync.lead.retry", lead_id=2)

    assert [r["event"] for r in json_lines(stream)] == ["sync.lead.retry"]


# --------------------------------------------------------------------------- tracebacks


class _UpstreamError(Exception):
    pass


def _fail_with_secrets() -> None:
    try:
        raise _UpstreamError("HubSpot echoed Authorization: " + BEARER_TOKEN)
    except _UpstreamError as cause:
        raise RuntimeError(f"sync failed; internal token was {INTERNAL}") from cause


def test_exception_tracebacks_are_redacted(log_format: str) -> None:
    stream = configure(log_format)

    try:
        _fail_with_secrets()
    except RuntimeError:
        get_logger("leadsync.engine.worker").exception("sync.batch.crashed", lead_ids=[1])
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
        get_logger("leadsync.engine.worker").error("sync.batch.crashed", exc_info=True)

    output = stream.getvalue()
    assert output.count("_UpstreamError") >= 3  # the chained cause is rendered too
    assert output.count("RuntimeError") >= 3
    assert_no_secret(output)
    assert_bearer_scrubbed(output)
    if log_format == "json":
        records = json_lines(stream)
        assert len(records) == 3
        for record in records:
            assert "Traceback (most recent call last)" in record["exception"]
            assert_no_secret(json.dumps(record, ensure_ascii=False))


def test_an_exception_passed_as_a_value_is_redacted(log_format: str) -> None:
    stream = configure(log_format)

    get_logger("leadsync.test").warning(
        "hubspot.request.failed", error=ValueError(f"bad token {TOKEN}"), http_status=401
    )

    output = stream.getvalue()
    assert_no_secret(output)
    assert "ValueError: bad token " + REDACTED in output


# --------------------------------------------------------------------------- escaping, truncation


def test_json_stays_valid_when_a_value_quotes_a_bearer_credential() -> None:
    # The rendered line is scrubbed once more; that pass must not eat the backslash of an
    # escaped quote after "Bearer [REDACTED]".
    stream = configure("json")

    get_logger("leadsync.test").warning(
        "hubspot.request.failed", error='echoed {"Authorization": "Bearer ' + TOKEN + '"}'
    )
    logging.getLogger("uvicorn.error").error('header was "Bearer %s"', TOKEN)

    records = json_lines(stream)
    assert records[0]["error"] == f'echoed {{"Authorization": "Bearer {REDACTED}"}}'
    assert records[1]["event"] == f'header was "Bearer {REDACTED}"'


def test_json_tracebacks_redact_secrets_that_json_escapes() -> None:
    # Once JSON-escaped (quote, backslash, accent), a secret no longer matches itself.
    quoted = 'pw-"REDACTME"-\\-1234'
    accented = "contraseña-REDACTME-1234"
    stream = configure("json", secrets=(quoted, accented))

    try:
        raise RuntimeError(f"could not log in with {quoted} or {accented}")
    except RuntimeError:
        get_logger("leadsync.store.db").exception("db.connect_failed")

    (record,) = json_lines(stream)
    assert quoted not in record["exception"]
    assert accented not in record["exception"]


def test_console_tracebacks_never_print_part_of_a_secret() -> None:
    # rich's tracebacks print locals and cut long strings: half a secret matches nothing.
    stream = configure("console")

    def send(url: str) -> None:
        raise ConnectionError("connection reset by peer")

    try:
        send("https://api.hubapi.com/crm/v3/contacts?hapikey=" + TOKEN)
    except ConnectionError:
        get_logger("leadsync.hubspot").exception("hubspot.request.failed")

    assert_no_secret(stream.getvalue())
