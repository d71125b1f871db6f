"""Erasure, access and retention on the stored rows (docs/privacy.md).

- `request_erasure`: the request's row and the cancellation of every lead of the email, in
  one transaction (run inside `SendFence.erasing()`, store/fence.py).
- `claim_erasures` / `complete_erasure` / `record_erasure_attempt`: the workers' queue of
  GDPR deletes, leased and fenced like the leads' queue.
- `scrub`: the personal fields of a lead set to NULL, for an erasure or for retention.
- `subject_leads`: every lead of an email, by the address or, once scrubbed, by its keyed hash.

The keyed hash is an HMAC-SHA256 of the canonical email under LEADSYNC_ERASURE_KEY: it lets a
later request be matched to an erasure without keeping the address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadsync.store.queue import announce_new_leads
from leadsync.store.tables import (
    DUE_ERASURE_SQL,
    LEAD_FIELDS,
    OPEN_ERASURE_SQL,
    RETAINED_SQL,
    UNFINISHED_SQL,
    Erasure,
    ErasureStatus,
    Lead,
    LeadSyncAttempt,
    SyncStatus,
)

_leads: Table = Lead.__table__  # type: ignore[assignment]
_erasures: Table = Erasure.__table__  # type: ignore[assignment]
_history: Table = LeadSyncAttempt.__table__  # type: ignore[assignment]
_OPEN = text(f"erasures.{OPEN_ERASURE_SQL}")
_DUE = text(f"erasures.{DUE_ERASURE_SQL}")
_UNFINISHED = text(f"leads.{UNFINISHED_SQL}")
_RETAINED = text(RETAINED_SQL)

# What replaces the lead's own values inside error texts that are kept (retention keeps the
# sync columns); values shorter than MIN_MASKED_VALUE would shred ordinary words.
REMOVED: Final = "[removed]"
MIN_MASKED_VALUE: Final = 3


def _without_personal_data(text_: ColumnElement[Any]) -> ColumnElement[Any]:
    """The SQL of `text_` with every personal field of its lead (`leads`) cut out."""
    for name in sorted(LEAD_FIELDS, key=lambda n: n != "message"):  # the longest first
        value = _leads.c[name]
        text_ = func.replace(
            text_, case((func.length(value) >= MIN_MASKED_VALUE, value), else_=""), REMOVED
        )
    return text_


def email_hash(key: bytes, email: str) -> str:
    """Return the keyed hash of a canonical email (hex HMAC-SHA256)."""
    return hmac.new(key, email.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """What a request did: its erasure (new, or the open one of the same email reused) and
    how many leads it cancelled."""

    erasure: Erasure
    created: bool
    cancelled: int


async def _open_erasure(session: AsyncSession, *, hashed: str) -> Erasure | None:
    result = await session.execute(
        select(Erasure).where(Erasure.email_hash == hashed, _OPEN).order_by(Erasure.id).limit(1)
    )
    return result.scalar_one_or_none()


async def request_erasure(
    session: AsyncSession,
    *,
    email: str,
    hashed: str,
    requested_by: str,
    now: dt.datetime,
    confirm_seconds: float = 0.0,
) -> ErasureRequest:
    """Record an erasure of `email` and cancel every lead of it, in the caller's transaction.

    Every lead of the email becomes ERASED, whatever its state: it is never claimed, renewed
    or sent again, and a write in flight under its old lease is fenced out. An open erasure
    of the same email is reused (a FAILED one is armed again): one email, one open erasure.

    If a lead of the email is being written or was written in the last `confirm_seconds`,
    HubSpot may still apply that write after the GDPR delete (a write the client gave up on
    can land late): the erasure then confirms with a second delete at `confirm_after`.
    """
    confirm_after = None
    if confirm_seconds > 0:
        recent = (
            select(Lead.id)
            .where(
                Lead.email == email,
                or_(
                    Lead.hubspot_sync_status == SyncStatus.IN_PROGRESS.value,
                    Lead.last_hubspot_attempt_at >= now - dt.timedelta(seconds=confirm_seconds),
                ),
            )
            .limit(1)
        )
        if (await session.execute(recent)).first() is not None:
            confirm_after = now + dt.timedelta(seconds=confirm_seconds)
    cancelled = await session.execute(
        update(Lead)
        .where(Lead.email == email, Lead.hubspot_sync_status != SyncStatus.ERASED.value)
        .values(
            hubspot_sync_status=SyncStatus.ERASED.value,
            hubspot_lease_token=None,
            hubspot_lease_expires_at=None,
            hubspot_next_attempt_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(cancelled, "rowcount", 0) or 0)
    existing = await _open_erasure(session, hashed=hashed)
    if existing is not None:
        existing.leads_cancelled += count
        existing.updated_at = now
        if existing.status == ErasureStatus.FAILED.value:
            existing.status = ErasureStatus.REQUESTED.value
            existing.next_attempt_at = now
            existing.attempts = 0
        if confirm_after is not None:
            existing.confirm_after = max(existing.confirm_after or confirm_after, confirm_after)
        await session.flush()
        return ErasureRequest(existing, created=False, cancelled=count)
    erasure = Erasure(
        email_hash=hashed,
        email=email,
        status=ErasureStatus.REQUESTED.value,
        requested_at=now,
        requested_by=requested_by,
        updated_at=now,
        attempts=0,
        next_attempt_at=now,
        leads_cancelled=count,
        confirm_after=confirm_after,
    )
    session.add(erasure)
    await session.flush()
    await announce_new_leads(session)  # workers execute erasures too: wake them on commit
    return ErasureRequest(erasure, created=True, cancelled=count)


async def record_return(
    session: AsyncSession, *, hashed: str, lead_id: int, now: dt.datetime
) -> None:
    """Note on every erasure of this email that the person came back with a new lead."""
    await session.execute(
        update(Erasure)
        .where(Erasure.email_hash == hashed, Erasure.returned_at.is_(None))
        .values(returned_at=now, returned_lead_id=lead_id)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class ClaimedErasure:
    """An erasure a worker now holds: the email to delete, under a fencing token."""

    id: int
    email: str
    attempts: int
    token: str
    deleted_at: dt.datetime | None = None  # HubSpot already deleted it once (CONFIRMING)
    confirm_after: dt.datetime | None = None  # a delete before this time needs another


async def has_due_erasure(session: AsyncSession, *, now: dt.datetime) -> bool:
    """Return whether an erasure is waiting for a worker (one probe of a partial index)."""
    found = await session.execute(
        select(_erasures.c.id).where(_DUE, _erasures.c.next_attempt_at <= now).limit(1)
    )
    return found.first() is not None


async def claim_erasures(
    session: AsyncSession, *, limit: int, lease_seconds: float, now: dt.datetime
) -> list[ClaimedErasure]:
    """Lease up to `limit` due erasures (new, retrying, or whose worker died) to the caller."""
    token = str(uuid.uuid4())
    expires = now + dt.timedelta(seconds=lease_seconds)
    picked = (
        select(_erasures.c.id)
        .where(_DUE, _erasures.c.next_attempt_at <= now)
        .order_by(_erasures.c.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    rows = await session.execute(
        update(Erasure)
        .where(Erasure.id.in_(picked.scalar_subquery()))
        .values(
            status=ErasureStatus.IN_HUBSPOT.value,
            attempts=Erasure.attempts + 1,
            lease_token=token,
            lease_expires_at=expires,
            # Equal to the lease expiry: a dead worker's erasure becomes due again by itself.
            next_attempt_at=expires,
            updated_at=now,
        )
        .returning(
            Erasure.id, Erasure.email, Erasure.attempts, Erasure.deleted_at, Erasure.confirm_after
        )
        .execution_options(synchronize_session=False)
    )
    return [
        ClaimedErasure(int(erasure_id), str(email), int(attempts), token, deleted, confirm)
        for erasure_id, email, attempts, deleted, confirm in rows.all()
    ]


async def record_erasure_attempt(
    session: AsyncSession,
    *,
    erasure_id: int,
    token: str,
    status: ErasureStatus,
    now: dt.datetime,
    next_attempt_at: dt.datetime | None = None,
    http_status: int | None = None,
    error: str | None = None,
    counted: bool = True,
    deleted_at: dt.datetime | None = None,
) -> bool:
    """Record a GDPR delete that did not complete: RETRYING, FAILED, CONFIRMING (deleted once,
    `deleted_at`), or back to REQUESTED (never sent: `counted=False` gives the attempt back).
    Fenced by the token."""
    values: dict[str, Any] = {
        "status": status.value,
        "next_attempt_at": next_attempt_at,
        "lease_token": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    if deleted_at is not None:
        values["deleted_at"] = func.coalesce(Erasure.deleted_at, deleted_at)
    if counted:
        values |= {"http_status": http_status, "error": error}
    else:
        values["attempts"] = Erasure.attempts - 1
    result = await session.execute(
        update(Erasure)
        .where(Erasure.id == erasure_id, Erasure.lease_token == token)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _scrubbed_values(now: dt.datetime) -> dict[str, Any]:
    return {
        **dict.fromkeys(LEAD_FIELDS),
        "idempotency_fingerprint": None,
        "scrubbed_at": now,
        "updated_at": now,
    }


async def complete_erasure(
    session: AsyncSession, *, erasure_id: int, token: str, http_status: int, now: dt.datetime
) -> int | None:
    """HubSpot deleted the contact: scrub the email's ERASED leads, drop their history, let the
    email's newer leads (a new consent) go to HubSpot, and forget the address.

    Returns how many leads were scrubbed, or None when the lease had moved on (fenced).
    """
    # Locked first: a claim holding a new lead of this email (store/queue.py) share-locks the
    # open erasure, so it either sees it completed or is waited for and its lead woken below.
    row = (
        await session.execute(
            select(Erasure.email, Erasure.email_hash)
            .where(Erasure.id == erasure_id, Erasure.lease_token == token)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    email, hashed = row
    erased = select(Lead.id).where(
        Lead.email == email, Lead.hubspot_sync_status == SyncStatus.ERASED.value
    )
    # History rows keep HubSpot's error texts, which may quote the address: they go.
    await session.execute(
        delete(LeadSyncAttempt)
        .where(LeadSyncAttempt.lead_id.in_(erased.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    scrubbed = await session.execute(
        update(Lead)
        .where(Lead.email == email, Lead.hubspot_sync_status == SyncStatus.ERASED.value)
        .values(
            {
                **_scrubbed_values(now),
                "email_hash": hashed,
                "hubspot_error": None,
                "hubspot_next_attempt_at": None,
            }
        )
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(scrubbed, "rowcount", 0) or 0)
    woken = await session.execute(
        update(Lead)
        .where(Lead.email == email, _UNFINISHED, Lead.hubspot_next_attempt_at.is_(None))
        .values(hubspot_next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(woken, "rowcount", 0):
        await announce_new_leads(session)
    await session.execute(
        update(Erasure)
        .where(Erasure.id == erasure_id)
        .values(
            status=ErasureStatus.COMPLETED.value,
            email=None,
            completed_at=now,
            updated_at=now,
            http_status=http_status,
            error=None,
            next_attempt_at=None,
            lease_token=None,
            lease_expires_at=None,
            leads_scrubbed=count,
        )
        .execution_options(synchronize_session=False)
    )
    return count


async def retry_failed_erasure(
    session: AsyncSession, *, erasure_id: int, now: dt.datetime
) -> Erasure | None:
    """Arm a FAILED erasure again (an operator's retry); return it, or None if not found."""
    erasure = await session.get(Erasure, erasure_id, with_for_update=True)
    if erasure is None:
        return None
    if erasure.status == ErasureStatus.FAILED.value:
        erasure.status = ErasureStatus.REQUESTED.value
        erasure.attempts = 0
        erasure.next_attempt_at = now
        erasure.updated_at = now
        await session.flush()
        await announce_new_leads(session)
    return erasure


async def get_erasure(session: AsyncSession, *, erasure_id: int) -> Erasure | None:
    """Return one erasure by id."""
    return await session.get(Erasure, erasure_id)


async def list_erasures(
    session: AsyncSession, *, status: ErasureStatus | None, limit: int, after: int | None
) -> list[Erasure]:
    """Return up to `limit` erasures newest first, older than id `after` (keyset pagination)."""
    query = select(Erasure).order_by(Erasure.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Erasure.status == status.value)
    if after is not None:
        query = query.where(Erasure.id < after)
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """Open erasures and the oldest one's request time (metrics and the runbook's alert)."""

    open: int
    oldest_open_at: dt.datetime | None
    by_status: dict[str, int]


async def erasure_counts(session: AsyncSession) -> ErasureCounts:
    """Count erasures per status; the age of the oldest open one."""
    rows = await session.execute(select(Erasure.status, func.count()).group_by(Erasure.status))
    by_status = {status.value: 0 for status in ErasureStatus}
    by_status.update({str(status): int(n) for status, n in rows.all()})
    oldest = (
        await session.execute(select(func.min(Erasure.requested_at)).where(_OPEN))
    ).scalar_one()
    opened = sum(n for s, n in by_status.items() if s != ErasureStatus.COMPLETED.value)
    return ErasureCounts(open=opened, oldest_open_at=oldest, by_status=by_status)


async def subject_leads(session: AsyncSession, *, email: str, hashed: str | None) -> list[Lead]:
    """Return every lead of the email, oldest first: by address, and scrubbed ones by hash."""
    matches: list[ColumnElement[bool]] = [Lead.email == email]
    if hashed is not None:
        matches.append(Lead.email_hash == hashed)
    result = await session.execute(select(Lead).where(or_(*matches)).order_by(Lead.id))
    return list(result.scalars())


async def subject_erasures(session: AsyncSession, *, hashed: str) -> list[Erasure]:
    """Return every erasure of the email (matched by its keyed hash), oldest first."""
    result = await session.execute(
        select(Erasure).where(Erasure.email_hash == hashed).order_by(Erasure.id)
    )
    return list(result.scalars())


async def scrub_expired(
    session: AsyncSession, *, created_before: dt.datetime, limit: int, now: dt.datetime
) -> int:
    """Remove the personal fields of up to `limit` finished leads created before the cutoff.

    SYNCED and FAILED leads only, the oldest first, on the retention index; their sync columns
    stay, with the lead's own values cut out of the error texts (the lead's and its history's).
    """
    picked = (
        select(Lead.id)
        .where(_RETAINED, Lead.created_at < created_before)
        .order_by(Lead.created_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    ids = [int(row[0]) for row in (await session.execute(picked)).all()]
    if not ids:
        return 0
    await session.execute(
        update(LeadSyncAttempt)
        .where(
            LeadSyncAttempt.lead_id == Lead.id,
            Lead.id.in_(ids),
            LeadSyncAttempt.error.is_not(None),
        )
        .values(error=_without_personal_data(_history.c.error))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Lead)
        .where(Lead.id.in_(ids), _RETAINED)
        .values(
            {
                **_scrubbed_values(now),
                "hubspot_error": _without_personal_data(_leads.c.hubspot_error),
            }
        )
        .execution_options(synchronize_session=False)
    )
    return len(ids)
