"""The numbers of the console's overview, each one or a few index probes, so the page stays
fast with millions of leads (bench/console.py): counts per status exact up to a cap and
estimated by the planner beyond it, the due backlog, the oldest unsynced lead."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from leadsync.store.tables import UNFINISHED, UNFINISHED_SQL, Lead, SyncStatus

# Counted exactly up to this many rows per status (an index-only walk of at most this many
# entries); beyond it PostgreSQL's planner estimate is shown, marked as an estimate.
EXACT_UP_TO: Final = 10_000
_UNFINISHED = text(f"leads.{UNFINISHED_SQL}")


@dataclass(frozen=True, slots=True)
class Count:
    """A number of rows, exact or (beyond EXACT_UP_TO) the planner's estimate."""

    value: int
    exact: bool


async def _capped(session: AsyncSession, *conditions: object, cap: int) -> int:
    inner = select(Lead.id).where(*conditions).limit(cap + 1).subquery()  # type: ignore[arg-type]
    return int((await session.execute(select(func.count()).select_from(inner))).scalar_one())


async def _estimate(session: AsyncSession, status: SyncStatus) -> int:
    # The planner's row estimate for the status, from the table's statistics: no scan. The
    # value is one of our own enum's constants (checked), so inlining it is safe; a bound
    # parameter would give the generic plan's estimate instead.
    value = SyncStatus(status).value
    assert value.isalpha() or value.replace("_", "").isalpha()
    query = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM leads WHERE hubspot_sync_status = '{value}'"  # noqa: S608
    plan = (await session.execute(text(query))).scalar_one()
    document = json.loads(plan) if isinstance(plan, str) else plan
    return int(document[0]["Plan"]["Plan Rows"])


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def status_counts(session: AsyncSession, *, cap: int = EXACT_UP_TO) -> dict[str, Count]:
    """Leads per sync status: exact up to `cap`, the planner's estimate beyond (PostgreSQL;
    SQLite, one node and small, always counts exactly)."""
    counts: dict[str, Count] = {}
    for status in SyncStatus:
        if not _postgres(session):
            exact = await session.execute(
                select(func.count()).where(Lead.hubspot_sync_status == status.value)
            )
            counts[status.value] = Count(int(exact.scalar_one()), True)
            continue
        seen = await _capped(session, Lead.hubspot_sync_status == status.value, cap=cap)
        if seen <= cap:
            counts[status.value] = Count(seen, True)
        else:
            estimate = await _estimate(session, status)
            counts[status.value] = Count(max(estimate, seen), False)
    return counts


async def due_now(session: AsyncSession, *, now: dt.datetime, cap: int = EXACT_UP_TO) -> Count:
    """Unfinished leads due now (the backlog), exact up to `cap` (a walk of the partial index)."""
    seen = await _capped(session, _UNFINISHED, Lead.hubspot_next_attempt_at <= now, cap=cap)
    return Count(min(seen, cap), seen <= cap) if seen > cap else Count(seen, True)


async def oldest_due(session: AsyncSession, *, now: dt.datetime) -> dt.datetime | None:
    """When the longest-waiting due lead fell due (one step down the partial index)."""
    result = await session.execute(
        select(func.min(Lead.hubspot_next_attempt_at)).where(
            _UNFINISHED, Lead.hubspot_next_attempt_at <= now
        )
    )
    return result.scalar_one()


async def oldest_unsynced(session: AsyncSession) -> tuple[int, dt.datetime] | None:
    """The oldest lead still on its way to HubSpot (id, created_at): one probe per status."""
    found: list[tuple[int, dt.datetime]] = []
    for status in UNFINISHED:
        row = (
            await session.execute(
                select(Lead.id, Lead.created_at)
                .where(Lead.hubspot_sync_status == status.value)
                .order_by(Lead.id)
                .limit(1)
            )
        ).first()
        if row is not None:
            found.append((int(row[0]), row[1]))
    return min(found, key=lambda item: item[0]) if found else None
