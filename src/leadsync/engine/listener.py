"""PostgreSQL LISTEN: wakes a worker when a lead commits in any process on any machine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

from leadsync.logging import get_logger
from leadsync.store.queue import NOTIFY_CHANNEL

log = get_logger(__name__)
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0


def asyncpg_dsn(url: str) -> str:
    """Return a plain libpq DSN for asyncpg from a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PostgresListener:
    """Keeps one LISTEN connection open, reconnecting with backoff; polling covers the gaps."""

    def __init__(self, *, url: str, on_notify: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(url)
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        """Start listening; wait a little for the first connection so early commits are heard."""
        self._task = asyncio.create_task(self._run(), name="leadsync-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait_seconds)

    async def stop(self) -> None:
        """Close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, *_args: Any) -> None:
        self._on_notify()

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn)
            except Exception as exc:  # any failure to connect: back off and try again
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log.warning("sync.listener.connect_failed", error_type=type(exc).__name__)
                await asyncio.sleep(delay)  # reconnect backoff
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                delay = RECONNECT_FIRST_SECONDS
                self._connected.set()
                # Anything committed while we were deaf is picked up by this first wake-up.
                self._on_notify()
                await lost.wait()
                log.warning("sync.listener.connection_lost")
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
