"""store/bulk.py and the throughput reads benchmarks use: both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.store import queue
from leadsync.store.bulk import LeadLoad, load_leads
from leadsync.store.db import transaction
from leadsync.store.tables import SyncStatus

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


async def test_load_leads_stores_fields_and_state_and_counts_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    loads = [
        LeadLoad(fields={"email": f"l{i}@example.com", "firstname": "Bulk"}, created_at=T0)
        for i in range(5)
    ] + [
        LeadLoad(
            fields={"email": "done@example.com"},
            created_at=T0,
            status=SyncStatus.SYNCED,
            synced_at=T0 + dt.timedelta(seconds=s),
            hubspot_id=str(100 + s),
        )
        for s in (1, 1, 3)
    ]
    async with transaction(sessions) as session:
        assert await load_leads(session, loads) == 8
        assert await load_leads(session, []) == 0

    async with sessions() as session:
        assert await queue.count_status(session, SyncStatus.PENDING) == 5
        assert await queue.count_status(session, SyncStatus.SYNCED) == 3
        # Loaded PENDING leads are due at once: the engine's claim finds them.
        assert await queue.has_due(session, now=T0)
        window = await queue.sync_window(session, since=T0)
        later = await queue.sync_window(session, since=T0 + dt.timedelta(seconds=2))
        stats = await queue.stats(session, now=T0)

    assert (window.first, window.last) == (
        T0 + dt.timedelta(seconds=1),
        T0 + dt.timedelta(seconds=3),
    )
    assert (window.synced, window.head) == (3, 2)
    assert (later.synced, later.head) == (1, 1)
    assert stats.counts["PENDING"] == 5


async def test_sync_window_is_empty_before_anything_synced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        window = await queue.sync_window(session, since=T0)

    assert (window.first, window.last, window.synced, window.head) == (None, None, 0, 0)
