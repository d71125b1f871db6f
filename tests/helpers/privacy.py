"""Erasures in the tests: read one, and a wait_for check on its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from leadsync.store.tables import Erasure, ErasureStatus
from tests.helpers.leads import Sessions


async def fetch_erasure(sessions: Sessions, erasure_id: int) -> Erasure:
    """Read one erasure by id (it must exist)."""
    async with sessions() as session:
        erasure = await session.get(Erasure, erasure_id)
        assert erasure is not None, f"no erasure {erasure_id}"
        return erasure


def erasure_in(
    sessions: Sessions, erasure_id: int, status: ErasureStatus = ErasureStatus.COMPLETED
) -> Callable[[], Awaitable[Erasure | None]]:
    """A wait_for check: the erasure once it has `status`, else None."""

    async def check() -> Erasure | None:
        erasure = await fetch_erasure(sessions, erasure_id)
        return erasure if erasure.status == status else None

    return check
