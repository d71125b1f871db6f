"""Leads as the API stores and reads them: insert (idempotently), get, list.

Functions take a session inside the caller's transaction; they flush, the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadsync.store.db import utcnow
from leadsync.store.queue import announce_new_leads
from leadsync.store.tables import LEAD_FIELDS, Lead, SyncStatus

_leads: Table = Lead.__table__  # type: ignore[assignment]
# A plain, cached INSERT .. RETURNING id: the ORM's unit of work, or a statement rebuilt with
# literal values, cost several times the insert itself (measured with py-spy under wrk).
_INSERT = insert(_leads).returning(_leads.c.id)


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different body."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The outcome of storing a lead: the lead, and whether this call created it."""

    lead: Lead
    created: bool


async def insert_lead(
    session: AsyncSession,
    *,
    fields: Mapping[str, str | None],
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Stored:
    """Store a PENDING lead and announce it; replay the first lead for a repeated key.

    `fields`: a value (or None) for each name of LEAD_FIELDS. `fingerprint`: a hash of the
    request body, which a replay with the same key must match.
    """
    if idempotency_key:
        existing = await _by_key(session, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint)
    now = utcnow()
    values = {
        **{name: fields.get(name) for name in LEAD_FIELDS},
        "idempotency_key": idempotency_key,
        "idempotency_fingerprint": fingerprint if idempotency_key else None,
        "created_at": now,
        "updated_at": now,
        "hubspot_sync_status": SyncStatus.PENDING.value,
        "hubspot_sync_attempts": 0,
        "hubspot_next_attempt_at": now,
    }
    if idempotency_key:
        # Two identical submissions may race past the lookup: the unique key decides.
        try:
            async with session.begin_nested():
                lead_id = (await session.execute(_INSERT, values)).scalar_one()
        except IntegrityError:
            existing = await _by_key(session, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, fingerprint)
    else:
        lead_id = (await session.execute(_INSERT, values)).scalar_one()
    await announce_new_leads(session)
    return Stored(lead=Lead(id=lead_id, **values), created=True)


def _replay(existing: Lead, fingerprint: str | None) -> Stored:
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyConflict
    return Stored(lead=existing, created=False)


async def _by_key(session: AsyncSession, key: str) -> Lead | None:
    result = await session.execute(select(Lead).where(Lead.idempotency_key == key))
    return result.scalar_one_or_none()


async def get_lead(session: AsyncSession, *, lead_id: int) -> Lead | None:
    """Return one lead by id."""
    return await session.get(Lead, lead_id)


async def list_leads(
    session: AsyncSession, *, status: SyncStatus | None, limit: int, after: int | None
) -> list[Lead]:
    """Return up to `limit` leads newest first, older than id `after` (keyset pagination)."""
    query = select(Lead).order_by(Lead.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Lead.hubspot_sync_status == status.value)
    if after is not None:
        query = query.where(Lead.id < after)
    return list((await session.execute(query)).scalars())
