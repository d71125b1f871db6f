"""The lease of one claimed batch, renewed before any call it could not cover."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import LEASE_MARGIN_SECONDS
from leadsync.logging import get_logger
from leadsync.store import queue
from leadsync.store.db import transaction, utcnow
from leadsync.store.fence import SendFence

log = get_logger(__name__)


class BatchLease:
    """The lease of one claimed batch: renewed, for the whole batch, before any call it could
    not cover (so the leads still waiting for their call are not claimed by someone else)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        token: str,
        lead_ids: Sequence[int],
        expires_at: dt.datetime,
        lease_seconds: float,
        call_seconds: float,
        fence: SendFence | None = None,
    ) -> None:
        self._sessions = sessions
        self._fence = fence
        self._token = token
        self._held = set(lead_ids)
        self.expires_at = expires_at
        self._lease_seconds = lease_seconds
        # A call may last its whole total timeout, plus a margin for clocks and scheduling.
        self._needed = dt.timedelta(seconds=call_seconds + LEASE_MARGIN_SECONDS)

    async def cover(self, lead_ids: Sequence[int]) -> set[int]:
        """Return the ids whose lease covers one whole call from now, renewing if needed."""
        now = utcnow()
        if self.expires_at - now < self._needed and self._held:
            async with transaction(self._sessions) as session:
                kept, expires = await queue.renew(
                    session,
                    token=self._token,
                    lead_ids=sorted(self._held),
                    lease_seconds=self._lease_seconds,
                    now=now,
                )
            if len(kept) < len(self._held):
                log.info("sync.lease.lost", lead_ids=sorted(self._held - kept))
            self._held = kept
            self.expires_at = expires
        return {lead_id for lead_id in lead_ids if lead_id in self._held}

    @contextlib.asynccontextmanager
    async def fence(self, lead_ids: Sequence[int]) -> AsyncIterator[set[int]]:
        """Hold the send fence for one call (store/fence.py); yield the ids still ours whose
        email is not being erased. Leads it refuses are no longer held by this batch."""
        held = [lead_id for lead_id in lead_ids if lead_id in self._held]
        if self._fence is None:
            yield set(held)
            return
        async with self._fence.hold(token=self._token, lead_ids=held) as sendable:
            refused = set(held) - sendable
            if refused:
                log.info("sync.lease.fenced", lead_ids=sorted(refused))
                self._held -= refused
            yield sendable
