"""Wait on a condition with a deadline instead of sleeping: the one polling loop of the tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition awaited by `wait_for` did not become true before its deadline."""


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """Await `predicate` (sync or async) until it returns a truthy value and return that value.

    Raises WaitTimeout naming the predicate and its last value once `timeout` seconds pass.
    Use this instead of `asyncio.sleep(...)`: a test waits for a condition, never for time.
    A predicate may block (a sync HTTP call to a sandbox in a thread): the loop only polls.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    attempts = 0
    while True:
        attempts += 1
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise WaitTimeout(
                f"condition {what!s} still false after {timeout:g}s "
                f"({attempts} checks, last value {result!r})"
            )
        await asyncio.sleep(interval)
