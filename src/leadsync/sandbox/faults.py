"""Seeded faults: 5xx answers, hangs, and writes applied before the connection is cut."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import Receive

ERROR_STATUSES = (500, 502, 503, 504)


class Fault(enum.Enum):
    """What happens to one request."""

    NONE = "none"
    ERROR = "5xx"
    HANG = "timeout"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """The fault chosen for one request; `status` is set for ERROR."""

    kind: Fault
    status: int = 0


NO_FAULT = FaultDecision(Fault.NONE)


class FaultInjector:
    """Draws faults from its own seeded RNG, so one seed replays one sequence of faults."""

    def __init__(self, *, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def reseed(self, *, seed: int | None) -> None:
        """Restart the sequence from `seed`."""
        self._rng.seed(seed)

    def decide(self, *, error: float, hang: float, drop: float) -> FaultDecision:
        """Pick the fault for the next request from the three probabilities."""
        if not (error or hang or drop):
            return NO_FAULT
        # Always two draws per request, so the sequence depends only on the seed and
        # the number of requests, not on which faults earlier requests got.
        roll = self._rng.random()
        status = ERROR_STATUSES[self._rng.randrange(len(ERROR_STATUSES))]
        if roll < error:
            return FaultDecision(Fault.ERROR, status)
        if roll < error + hang:
            return FaultDecision(Fault.HANG)
        if roll < error + hang + drop:
            return FaultDecision(Fault.DROP)
        return NO_FAULT


class Abortable(Protocol):
    """A transport that can be closed at once, unsent data discarded."""

    def abort(self) -> None:
        """Close the connection without a goodbye."""


def find_transport(receive: Receive) -> Abortable | None:
    """Return the TCP transport behind uvicorn's `receive`, or None under another server."""
    # uvicorn's receive is a bound method of its RequestResponseCycle, which keeps the
    # connection's transport; ASGI itself offers no way to close a connection unanswered.
    # Duck-typed: uvloop's transports do not subclass asyncio.BaseTransport.
    cycle: Any = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


async def sleep_unless_gone(receive: Receive, seconds: float) -> bool:
    """Sleep `seconds` unless the client leaves first; return True if it left.

    `receive` must have no body left to read (the gate has read it), or it is discarded.
    """
    gone = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        done, _ = await asyncio.wait({gone}, timeout=seconds)
        return bool(done) and gone.exception() is None
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone, reading and discarding any body left."""
    while (await receive())["type"] != "http.disconnect":
        pass


class HangRegistry:
    """Requests held open on purpose; released when the client leaves or the server stops."""

    def __init__(self) -> None:
        self._held: set[asyncio.Future[None]] = set()

    @property
    def active(self) -> int:
        """How many requests are held right now."""
        return len(self._held)

    async def hold(self, receive: Receive, *, seconds: float) -> bool:
        """Keep the request open up to `seconds`, the client's disconnect, or release_all().

        Return True if the client left (disconnected) while held.
        """
        loop = asyncio.get_running_loop()
        released: asyncio.Future[None] = loop.create_future()
        gone = asyncio.ensure_future(wait_for_disconnect(receive))
        self._held.add(released)
        try:
            await asyncio.wait({released, gone}, timeout=seconds, return_when="FIRST_COMPLETED")
            return gone.done() and not gone.cancelled() and gone.exception() is None
        finally:
            self._held.discard(released)
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone

    def release_all(self) -> None:
        """Let every held request finish now; safe to call from any thread."""
        for future in list(self._held):
            future.get_loop().call_soon_threadsafe(_finish, future)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
