"""Put the process's logging back as it was: what the `restore_logging` fixture uses.

`configure_logging` (and the demo, and the CLI) configure the root logger, uvicorn's and
httpx's loggers and structlog for the whole process; a test that calls it must not leave its
stream or level to the tests after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

# The loggers leadsync's logging setup or the tests touch, besides the root logger.
LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


@contextmanager
def saved_logging() -> Iterator[None]:
    """Restore handlers, levels and propagation of the loggers, and structlog's config."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in LOGGERS)]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    configured, config = structlog.is_configured(), structlog.get_config()
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        if configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()
