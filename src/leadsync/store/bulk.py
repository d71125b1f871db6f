"""Loading many leads at once (imports, benchmarks): PostgreSQL's COPY, or one executemany."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadsync.store.tables import LEAD_FIELDS, Lead, SyncStatus

_leads: Table = Lead.__table__  # type: ignore[assignment]
_COLUMNS = (
    *LEAD_FIELDS,
    "created_at",
    "updated_at",
    "hubspot_sync_status",
    "hubspot_sync_attempts",
    "hubspot_next_attempt_at",
    "hubspot_synced_at",
    "hubspot_id",
)


@dataclass(frozen=True, slots=True)
class LeadLoad:
    """One lead to load as it is: its fields, and where it stands in the sync."""

    fields: Mapping[str, str | None]
    created_at: dt.datetime
    status: SyncStatus = SyncStatus.PENDING
    # PENDING leads are due at once unless told otherwise; finished ones are never due.
    next_attempt_at: dt.datetime | None = None
    synced_at: dt.datetime | None = None
    hubspot_id: str | None = None
    attempts: int = field(default=0)

    def row(self) -> tuple[object, ...]:
        """The values of _COLUMNS, in order."""
        due = self.next_attempt_at
        if due is None and self.status is SyncStatus.PENDING:
            due = self.created_at
        return (
            *(self.fields.get(name) for name in LEAD_FIELDS),
            self.created_at,
            self.created_at,
            self.status.value,
            self.attempts,
            due,
            self.synced_at,
            self.hubspot_id,
        )


async def load_leads(session: AsyncSession, leads: Iterable[LeadLoad]) -> int:
    """Insert the leads in the session's transaction (no NOTIFY: the caller wakes workers if
    it wants them to start at once); return how many. PostgreSQL uses COPY."""
    rows = [lead.row() for lead in leads]
    if not rows:
        return 0
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table("leads", records=rows, columns=list(_COLUMNS))
    else:
        await conn.execute(insert(_leads), [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    return len(rows)
