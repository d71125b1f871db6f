"""structlog set-up: console output in development, JSON in production, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import structlog

from leadsync.redact import (
    MIN_SECRET_LENGTH,
    REDACTED,
    mask_personal,
    scrub_forms,
    secret_forms,
)

__all__ = ["REDACTED", "SecretRedactor", "configure_logging", "get_logger"]


class SecretRedactor:
    """A structlog processor that scrubs known secrets and bearer credentials from every value
    (the rules of leadsync/redact.py)."""

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        self._secrets = secrets
        # Every secret ever seen stays known: a rotated-out token may still sit in a message.
        self._known: set[str] = set()
        self._forms: list[str] = []

    def scrub(self, text: str) -> str:
        """Return text with every known secret and bearer credential replaced, and email
        addresses and phone numbers masked (docs/privacy.md)."""
        current = set(self._secrets())
        if not current <= self._known:
            self._known |= current
            self._forms = secret_forms(s for s in self._known if len(s) >= MIN_SECRET_LENGTH)
        return mask_personal(scrub_forms(text, self._forms))

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            event_dict[key] = self._clean(value)
        return event_dict


class _ScrubRenderedText:
    """Last-line defence: scrub the rendered line too (tracebacks are rendered late)."""

    def __init__(self, redactor: SecretRedactor, renderer: Any) -> None:
        self._redactor = redactor
        self._renderer = renderer

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        rendered = self._renderer(logger, method, event_dict)
        return self._redactor.scrub(str(rendered))


def configure_logging(
    *,
    log_format: str = "console",
    level: str = "INFO",
    secrets: Callable[[], Iterable[str]] = tuple,
    stream: Any = None,
) -> SecretRedactor:
    """Route structlog, stdlib and uvicorn logs through one redacting pipeline."""
    redactor = SecretRedactor(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        # Tracebacks become text before redaction: once JSON-escaped, a secret with a quote
        # or an accent would no longer match.
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: rich's would print local variables, cutting long secrets in two.
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    shared.append(redactor)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _ScrubRenderedText(redactor, renderer),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers[:] = []
        uv.propagate = True
    # httpx logs full request lines at INFO; they carry no token but are noise per request.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return redactor


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger bound to a module name."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
