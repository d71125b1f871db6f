"""The lead row as a queue: announce, claim and complete, each in a single SQL statement.

Every outcome also appends its lead's history row (`store/history.py`) in the same
transaction, with one statement per batch.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Table,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeEngine

from leadsync.store import history as lead_history
from leadsync.store import pgdirect
from leadsync.store.history import Attempt
from leadsync.store.pgdirect import Direct
from leadsync.store.tables import (
    LEAD_FIELDS,
    OPEN_ERASURE_SQL,
    UNFINISHED_SQL,
    Erasure,
    Lead,
    SyncOutcome,
    SyncStatus,
)

# Workers LISTEN on this channel; PostgreSQL delivers a NOTIFY only when its transaction
# commits, which makes it the after-commit hand-off across processes for free.
NOTIFY_CHANNEL = "leadsync_leads"
_NOTIFY = text(f"NOTIFY {NOTIFY_CHANNEL}")

# Written as literal SQL, identical to the partial index's predicate, so that PostgreSQL can
# prove the index applies even for generic plans of prepared statements.
_UNFINISHED = text(f"leads.{UNFINISHED_SQL}")
_leads: Table = Lead.__table__  # type: ignore[assignment]
_busy = _leads.alias("busy")
# A list of lead ids, as one array parameter (the statements sent through asyncpg).
_IDS = bindparam("ids", type_=ARRAY(BigInteger()))
_erasures: Table = Erasure.__table__  # type: ignore[assignment]
# A lead whose email is being erased waits (docs/privacy.md): a new consent is synced only
# after the GDPR delete, which would otherwise delete it.
_OPEN_ERASURE = select(_erasures.c.id).where(
    _erasures.c.email == _leads.c.email, text(f"erasures.{OPEN_ERASURE_SQL}")
)
_ERASING = _OPEN_ERASURE.exists()
# The hold's own check, when it writes: the open erasure is still there, share-locked (on
# PostgreSQL) until the claim commits. complete_erasure locks the erasure before it wakes the
# held leads, so either the hold sees it completed and holds nothing, or the completion waits
# for the hold and wakes what it held. Without the lock an erasure completing between the
# claim's scan and its hold found nothing to wake, and the new lead waited forever.
_STILL_ERASING = _OPEN_ERASURE.with_for_update(read=True).exists()


@dataclass(frozen=True, slots=True, eq=False)
class LeadSnapshot:
    """The latest state of a claimed lead, as the claim statement returned it."""

    id: int
    values: Mapping[str, str | None]  # the lead's own fields, by the names of LEAD_FIELDS
    created_at: dt.datetime
    attempts: int
    lease_token: str

    @property
    def email(self) -> str:
        """The lead's email (canonical, as stored)."""
        return self.values["email"] or ""

    def fields(self) -> dict[str, str | None]:
        """Return the lead's own fields (LEAD_FIELDS) by name."""
        return {name: self.values.get(name) for name in LEAD_FIELDS}

    @classmethod
    def of(
        cls,
        *,
        id: int,
        created_at: dt.datetime,
        attempts: int = 0,
        lease_token: str = "",
        **fields: str | None,
    ) -> LeadSnapshot:
        """Build a snapshot from keyword fields (the names of LEAD_FIELDS)."""
        unknown = set(fields) - set(LEAD_FIELDS)
        if unknown:
            raise TypeError(f"not fields of a lead: {sorted(unknown)}")
        return cls(id, MappingProxyType(dict(fields)), created_at, attempts, lease_token)

    @classmethod
    def from_row(cls, row: Sequence[Any], *, lease_token: str) -> LeadSnapshot:
        """Build a snapshot from a row of _SNAPSHOT_COLUMNS."""
        lead_id, *rest = row
        values = MappingProxyType(dict(zip(LEAD_FIELDS, rest, strict=False)))
        created_at, attempts = rest[len(LEAD_FIELDS)], rest[len(LEAD_FIELDS) + 1]
        return cls(int(lead_id), values, created_at, int(attempts), lease_token)


@dataclass(frozen=True, slots=True)
class Completion:
    """The sync columns to write for one lead, fenced by the lease token it was claimed with."""

    lead_id: int
    lease_token: str
    status: SyncStatus
    attempts: int
    attempted_at: dt.datetime | None
    http_status: int | None = None
    hubspot_id: str | None = None
    synced_at: dt.datetime | None = None
    error: str | None = None
    next_attempt_at: dt.datetime | None = None
    keep_error: bool = False
    # What the history records for this outcome (None: no history row).
    outcome: SyncOutcome | None = None


async def announce_new_leads(session: AsyncSession) -> None:
    """Queue a wake-up for workers in other processes, delivered when this transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_NOTIFY)


def _due(now: dt.datetime) -> Select[int]:
    return select(Lead.id).where(_UNFINISHED, Lead.hubspot_next_attempt_at <= now)


async def has_due(session: AsyncSession, *, now: dt.datetime) -> bool:
    """Return whether any lead is due (uses the partial index; takes no lock)."""
    return (await session.execute(_due(now).limit(1))).first() is not None


async def next_due_at(session: AsyncSession) -> dt.datetime | None:
    """Return when the next unfinished lead falls due (one step down the partial index)."""
    result = await session.execute(
        select(func.min(Lead.hubspot_next_attempt_at)).where(_UNFINISHED)
    )
    return result.scalar_one()


# Every claim takes this transaction-scoped advisory lock on PostgreSQL (SQLite's BEGIN
# IMMEDIATE serialises it already). "At most one write per email in flight" needs each claim to
# see every claim committed before it: with SKIP LOCKED alone, two claimers could each take a
# different lead of one email. A claim holds the lock for a few milliseconds.
CLAIM_LOCK_KEY = 0x6C65_6164_7379_6E63  # "leadsync"
_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))")
# Due leads looked at per claim, beyond the limit: room for leads whose email is busy.
CLAIM_SCAN_EXTRA = 50
LEASE_EXPIRED_ERROR = (
    "lease expired before the outcome was recorded: the worker was killed or stalled "
    "during the HubSpot call"
)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim took: leads under one fencing token, and what goes with them.

    `leads`: every unfinished lead of the claimed emails, IN_PROGRESS under `token` until
    `expires_at`, in id order. `history`: the SYNCED leads of the same emails, whose values
    the write must carry too (newest non-empty value per property wins, across all of an
    email's leads). `exhausted`: leads whose expired lease used up their last attempt; they
    are FAILED now and not part of the batch.
    """

    token: str
    expires_at: dt.datetime
    leads: list[LeadSnapshot]
    history: list[LeadSnapshot]
    exhausted: list[LeadSnapshot]

    def __len__(self) -> int:
        return len(self.leads)

    def __bool__(self) -> bool:
        return bool(self.leads)

    @property
    def emails(self) -> list[str]:
        """The distinct emails of the claimed leads."""
        return list(dict.fromkeys(lead.email for lead in self.leads))


# The claim's RETURNING list: the id, the lead's fields (LEAD_FIELDS), the creation time and the
# attempts, as LeadSnapshot.from_row() reads them.
_SNAPSHOT_COLUMNS = (
    Lead.id,
    *(_leads.c[name] for name in LEAD_FIELDS),
    Lead.created_at,
    Lead.hubspot_sync_attempts,
)


async def claim(
    session: AsyncSession,
    *,
    limit: int,
    lease_seconds: float,
    now: dt.datetime,
    max_attempts: int | None = None,
    worker_id: str | None = None,
) -> Claim:
    """Lease the due leads of up to `limit` emails, with every unfinished lead of each email.

    An email with a live lease elsewhere is skipped (one write per email in flight), and its
    due leads are deferred to that lease's expiry so they do not clog the head of the queue;
    completing the other batch brings them forward again. A lead whose email is being erased
    is held (no due time) until that erasure completes. A lead re-claimed after its lease
    expired counts an attempt; if that was its last (`max_attempts`), it is FAILED instead.
    """
    token = str(uuid.uuid4())
    expires = now + dt.timedelta(seconds=lease_seconds)
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        return await _claim_direct(
            conn,
            token=token,
            expires=expires,
            limit=limit,
            now=now,
            max_attempts=max_attempts,
            worker_id=worker_id,
        )
    busy = (
        select(func.max(_busy.c.hubspot_lease_expires_at))
        .where(
            _busy.c.email == Lead.email,
            _busy.c.hubspot_sync_status == SyncStatus.IN_PROGRESS.value,
            _busy.c.hubspot_lease_expires_at > now,
        )
        .scalar_subquery()
    )
    scanned = (
        await conn.execute(
            select(Lead.id, Lead.email, busy, _ERASING)
            .where(_UNFINISHED, Lead.hubspot_next_attempt_at <= now)
            # The due index's own order, no tie-break on id: a second sort key made PostgreSQL
            # read and sort every due row (23 ms at 20,000 due) instead of walking the index
            # and stopping after the limit (0.5 ms). Equal times come in index order, which is
            # insertion order.
            .order_by(Lead.hubspot_next_attempt_at)
            .limit(limit + CLAIM_SCAN_EXTRA)
        )
    ).all()
    emails, deferred, held = _pick(scanned, limit)
    for until, ids in deferred.items():
        await conn.execute(
            update(Lead)
            .where(Lead.id.in_(ids), _UNFINISHED)
            .values(hubspot_next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
    if held:  # not due until their email's erasure completes (store/privacy.py wakes them)
        await conn.execute(
            update(Lead)
            .where(Lead.id.in_(held), _UNFINISHED, _STILL_ERASING)
            .values(hubspot_next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
    if not emails:
        return Claim(token, expires, [], [], [])
    # An IN_PROGRESS lead of a free email has an expired lease: its worker died or stalled.
    expired = Lead.hubspot_sync_status == SyncStatus.IN_PROGRESS.value
    exhausted = (
        and_(expired, Lead.hubspot_sync_attempts + 1 >= max_attempts)
        if max_attempts is not None
        else text("false")
    )
    rows = (
        await conn.execute(
            update(Lead)
            .where(_UNFINISHED, Lead.email.in_(emails))
            .values(
                hubspot_sync_status=case(
                    (exhausted, SyncStatus.FAILED.value), else_=SyncStatus.IN_PROGRESS.value
                ),
                hubspot_sync_attempts=Lead.hubspot_sync_attempts + case((expired, 1), else_=0),
                hubspot_error=case((expired, LEASE_EXPIRED_ERROR), else_=Lead.hubspot_error),
                hubspot_lease_token=case((exhausted, None), else_=token),
                hubspot_lease_expires_at=case((exhausted, None), else_=expires),
                # Equal to the lease expiry: an orphaned row becomes due again by itself.
                hubspot_next_attempt_at=case((exhausted, None), else_=expires),
                updated_at=now,
            )
            .returning(*_SNAPSHOT_COLUMNS, Lead.hubspot_sync_status)
            .execution_options(synchronize_session=False)
        )
    ).all()
    leads, failed = _taken(rows, token)
    if failed:  # their worker died on the last attempt (the attempts returned count it)
        await lead_history.append(conn, _expired(failed, now, worker_id))
    history: list[LeadSnapshot] = []
    if leads:
        synced = await conn.execute(
            select(*_SNAPSHOT_COLUMNS).where(
                Lead.email.in_({lead.email for lead in leads}),
                Lead.hubspot_sync_status == SyncStatus.SYNCED.value,
            )
        )
        history = [LeadSnapshot.from_row(row, lease_token="") for row in synced]
    return _claim_result(token, expires, leads, history, failed)


def _pick(
    scanned: Sequence[Sequence[Any]], limit: int
) -> tuple[list[str], dict[dt.datetime, list[int]], list[int]]:
    """From the scanned due leads (id, email, busy until, erasing): the emails to take (at
    most `limit`), the leads to defer to their email's lease expiry, the leads to hold."""
    emails: list[str] = []
    deferred: dict[dt.datetime, list[int]] = {}
    held: list[int] = []
    for lead_id, email, busy_until, erasing in scanned:
        if erasing:
            held.append(lead_id)
        elif busy_until is not None:
            deferred.setdefault(busy_until, []).append(lead_id)
        elif email not in emails and len(emails) < limit:
            emails.append(email)
    return emails, deferred, held


def _taken(
    rows: Sequence[Sequence[Any]], token: str
) -> tuple[list[LeadSnapshot], list[LeadSnapshot]]:
    """The claim's RETURNING rows: the leads taken, and those FAILED on their last attempt."""
    leads: list[LeadSnapshot] = []
    failed: list[LeadSnapshot] = []
    for *values, status in rows:
        lead = LeadSnapshot.from_row(values, lease_token=token)
        (failed if status == SyncStatus.FAILED.value else leads).append(lead)
    return leads, failed


def _expired(
    failed: Sequence[LeadSnapshot], now: dt.datetime, worker_id: str | None
) -> list[Attempt]:
    return [
        Attempt(
            lead_id=lead.id,
            attempted_at=now,
            attempt=lead.attempts,
            outcome=SyncOutcome.EXPIRED,
            error=LEASE_EXPIRED_ERROR,
            worker_id=worker_id,
        )
        for lead in failed
    ]


def _claim_result(
    token: str,
    expires: dt.datetime,
    leads: list[LeadSnapshot],
    history: list[LeadSnapshot],
    failed: list[LeadSnapshot],
) -> Claim:
    return Claim(
        token=token,
        expires_at=expires,
        leads=sorted(leads, key=lambda lead: lead.id),
        history=sorted(history, key=lambda lead: lead.id),
        exhausted=sorted(failed, key=lambda lead: lead.id),
    )


# The claim's statements on PostgreSQL, compiled once and sent through asyncpg
# (store/pgdirect.py); the same statements as the session path's, with named parameters.
_NOW = bindparam("now", type_=Lead.updated_at.type)


def _by_email(status: ColumnElement[str], value: SyncStatus) -> ColumnElement[bool]:
    """`status = value`, written so that no index on the status can serve it (`|| ''`).

    The claim looks up other leads of the same emails: only the email index keeps that cheap
    whatever PostgreSQL's statistics say. With statistics that call a status rare (taken
    before a drain began, say, when nothing was IN_PROGRESS or SYNCED yet), the planner
    walked every IN_PROGRESS lead once per scanned lead, or every SYNCED lead per claim:
    10.8 ms and 3.5 ms of a claim's 15 (bench/RESULTS.md, "Issue #11").
    """
    return status.concat(text("''")) == text(f"'{value.value}'")


_D_CLAIM_LOCK = Direct.of(_CLAIM_LOCK)
_D_SCAN = Direct.of(
    select(
        Lead.id,
        Lead.email,
        select(func.max(_busy.c.hubspot_lease_expires_at))
        .where(
            _busy.c.email == Lead.email,
            _by_email(_busy.c.hubspot_sync_status, SyncStatus.IN_PROGRESS),
            _busy.c.hubspot_lease_expires_at > _NOW,
        )
        .scalar_subquery(),
        _ERASING,
    )
    .where(_UNFINISHED, Lead.hubspot_next_attempt_at <= _NOW)
    .order_by(Lead.hubspot_next_attempt_at)
    .limit(bindparam("scan", type_=Integer()))
)
_D_DEFER = Direct.of(
    _leads.update()
    .where(_leads.c.id == any_(_IDS), _UNFINISHED)
    .values(hubspot_next_attempt_at=bindparam("until", type_=Lead.updated_at.type), updated_at=_NOW)
)
_D_HOLD = Direct.of(
    _leads.update()
    .where(_leads.c.id == any_(_IDS), _UNFINISHED, _STILL_ERASING)
    .values(hubspot_next_attempt_at=None, updated_at=_NOW)
)
_EXPIRED_LEASE = _leads.c.hubspot_sync_status == SyncStatus.IN_PROGRESS.value
_EXHAUSTED = and_(
    _EXPIRED_LEASE,
    _leads.c.hubspot_sync_attempts + 1 >= bindparam("max_attempts", type_=Integer()),
)
_TOKEN = bindparam("token", type_=String())
_EXPIRES = bindparam("expires", type_=Lead.updated_at.type)
_D_TAKE = Direct.of(
    _leads.update()
    .where(_UNFINISHED, _leads.c.email == any_(bindparam("emails", type_=ARRAY(String()))))
    .values(
        hubspot_sync_status=case(
            (_EXHAUSTED, SyncStatus.FAILED.value), else_=SyncStatus.IN_PROGRESS.value
        ),
        hubspot_sync_attempts=_leads.c.hubspot_sync_attempts + case((_EXPIRED_LEASE, 1), else_=0),
        hubspot_error=case((_EXPIRED_LEASE, LEASE_EXPIRED_ERROR), else_=_leads.c.hubspot_error),
        hubspot_lease_token=case((_EXHAUSTED, None), else_=_TOKEN),
        hubspot_lease_expires_at=case((_EXHAUSTED, None), else_=_EXPIRES),
        hubspot_next_attempt_at=case((_EXHAUSTED, None), else_=_EXPIRES),
        updated_at=_NOW,
    )
    .returning(*_SNAPSHOT_COLUMNS, _leads.c.hubspot_sync_status)
)
_D_SYNCED = Direct.of(
    select(*_SNAPSHOT_COLUMNS).where(
        Lead.email == any_(bindparam("emails", type_=ARRAY(String()))),
        _by_email(_leads.c.hubspot_sync_status, SyncStatus.SYNCED),
    )
)
# With no attempt limit, no lead is ever exhausted by an expired lease.
_NO_LIMIT = 2**31 - 1


async def _claim_direct(
    conn: AsyncConnection,
    *,
    token: str,
    expires: dt.datetime,
    limit: int,
    now: dt.datetime,
    max_attempts: int | None,
    worker_id: str | None,
) -> Claim:
    """`claim` on PostgreSQL, statement for statement, through asyncpg."""
    driver = await pgdirect.driver(conn)
    await driver.execute(_D_CLAIM_LOCK.sql, *_D_CLAIM_LOCK.args({"key": CLAIM_LOCK_KEY}))
    scanned = await driver.fetch(
        _D_SCAN.sql, *_D_SCAN.args({"now": now, "scan": limit + CLAIM_SCAN_EXTRA})
    )
    emails, deferred, held = _pick(scanned, limit)
    for until, ids in deferred.items():
        await driver.execute(_D_DEFER.sql, *_D_DEFER.args({"ids": ids, "until": until, "now": now}))
    if held:  # not due until their email's erasure completes (store/privacy.py wakes them)
        await driver.execute(_D_HOLD.sql, *_D_HOLD.args({"ids": held, "now": now}))
    if not emails:
        return Claim(token, expires, [], [], [])
    values = {
        "emails": emails,
        "max_attempts": _NO_LIMIT if max_attempts is None else max_attempts,
        "token": token,
        "expires": expires,
        "now": now,
    }
    leads, failed = _taken(await driver.fetch(_D_TAKE.sql, *_D_TAKE.args(values)), token)
    if failed:  # their worker died on the last attempt (the attempts returned count it)
        await lead_history.append_direct(driver, _expired(failed, now, worker_id))
    history: list[LeadSnapshot] = []
    if leads:
        taken = sorted({lead.email for lead in leads})
        synced = await driver.fetch(_D_SYNCED.sql, *_D_SYNCED.args({"emails": taken}))
        history = [LeadSnapshot.from_row(row, lease_token="") for row in synced]
    return _claim_result(token, expires, leads, history, failed)


async def renew(
    session: AsyncSession,
    *,
    token: str,
    lead_ids: Sequence[int],
    lease_seconds: float,
    now: dt.datetime,
) -> tuple[set[int], dt.datetime]:
    """Extend the lease of these leads if it is still ours; return the ids kept and the expiry.

    Fenced like an outcome: a lead re-claimed by another worker (new token) or put back by
    reconciliation is not renewed, and the caller must not send it.
    """
    expires = now + dt.timedelta(seconds=lease_seconds)
    if not lead_ids:
        return set(), expires
    result = await session.execute(
        update(Lead)
        .where(
            Lead.id.in_(list(lead_ids)),
            Lead.hubspot_lease_token == token,
            Lead.hubspot_sync_status == SyncStatus.IN_PROGRESS.value,
        )
        .values(hubspot_lease_expires_at=expires, hubspot_next_attempt_at=expires)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    return {int(row[0]) for row in result}, expires


# The outcome of one lead, column by column: its name and SQL type, as both statements below
# take it. The SET clause is written once (_outcome_values) for both.
_OUTCOME_FIELDS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("id", BigInteger()),
    ("token", String()),
    ("status", String()),
    ("attempts", Integer()),
    ("attempted_at", DateTime(timezone=True)),
    ("http_status", Integer()),
    ("hubspot_id", String()),
    ("synced_at", DateTime(timezone=True)),
    ("set_error", Boolean()),
    ("error", Text()),
    ("next_at", DateTime(timezone=True)),
)


def _outcome_values(value: Callable[[str], ColumnElement[Any]]) -> dict[str, Any]:
    """The SET clause of a completion; `value(name)` is where each outcome field comes from."""
    c = _leads.c
    return {
        "hubspot_sync_status": value("status"),
        "hubspot_sync_attempts": value("attempts"),
        "last_hubspot_attempt_at": func.coalesce(value("attempted_at"), c.last_hubspot_attempt_at),
        "hubspot_last_http_status": func.coalesce(value("http_status"), c.hubspot_last_http_status),
        "hubspot_id": func.coalesce(value("hubspot_id"), c.hubspot_id),
        "hubspot_synced_at": func.coalesce(value("synced_at"), c.hubspot_synced_at),
        # A success clears the error, a failure replaces it, a released lead keeps its last one.
        "hubspot_error": case((value("set_error"), value("error")), else_=c.hubspot_error),
        "hubspot_next_attempt_at": value("next_at"),
        "hubspot_lease_token": None,
        "hubspot_lease_expires_at": None,
        "updated_at": bindparam("now", type_=Lead.updated_at.type),
    }


_TYPES = dict(_OUTCOME_FIELDS)
# Timestamps go through the table's UTC type (SQLite stores naive UTC text).
_BIND_TYPES: dict[str, TypeEngine[Any]] = {
    **_TYPES,
    "attempted_at": Lead.last_hubspot_attempt_at.type,
    "synced_at": Lead.hubspot_synced_at.type,
    "next_at": Lead.hubspot_next_attempt_at.type,
}

# SQLite: an executemany of one fenced UPDATE per lead.
_COMPLETE = (
    _leads.update()
    .where(_leads.c.id == bindparam("b_id"), _leads.c.hubspot_lease_token == bindparam("b_token"))
    .values(_outcome_values(lambda name: bindparam(f"b_{name}", type_=_BIND_TYPES[name])))
)

# PostgreSQL: one statement for the whole batch, the outcomes passed as parallel arrays.
# Far cheaper than an executemany of 100 updates, in the worker and in the server alike.
_V = (
    func.unnest(*(cast(bindparam(f"v_{name}"), ARRAY(type_)) for name, type_ in _OUTCOME_FIELDS))
    .table_valued(*(column(name, type_) for name, type_ in _OUTCOME_FIELDS))
    .render_derived(name="v")
)
_COMPLETE_UNNEST = (
    _leads.update()
    .where(_leads.c.id == _V.c.id, _leads.c.hubspot_lease_token == _V.c.token)
    .values(_outcome_values(lambda name: _V.c[name]))
    .returning(_leads.c.id)
)


def _outcome_row(c: Completion) -> dict[str, object]:
    """One completion as the outcome fields (_OUTCOME_FIELDS) the statements take."""
    return {
        "id": c.lead_id,
        "token": c.lease_token,
        "status": c.status.value,
        "attempts": c.attempts,
        "attempted_at": c.attempted_at,
        "http_status": c.http_status,
        "hubspot_id": c.hubspot_id,
        "synced_at": c.synced_at,
        "set_error": not c.keep_error,
        "error": c.error,
        "next_at": c.next_attempt_at,
    }


async def complete(
    session: AsyncSession,
    *,
    completions: Sequence[Completion],
    now: dt.datetime,
    wake_until: dt.datetime | None = None,
    worker_id: str | None = None,
    duration_ms: int | None = None,
) -> set[int]:
    """Write outcomes in one round trip; a row whose lease moved on is left alone (fencing).

    Returns the ids really written. `wake_until`: the batch's lease expiry; leads of the same
    emails that a claim deferred until then (their email was busy with this batch) are due now.
    Each completion with an `outcome` appends a history row in the same transaction, in one
    statement for the batch: its outcome, or `fenced` when its lease had moved on (none for a
    lead being erased).
    """
    if not completions:
        return set()
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        return await _complete_direct(
            conn,
            completions=completions,
            now=now,
            wake_until=wake_until,
            worker_id=worker_id,
            duration_ms=duration_ms,
        )
    # SQLite: the transaction holds the only write lock (BEGIN IMMEDIATE), so the rows still
    # leased to us now are exactly the rows the executemany below will change.
    tokens = {c.lead_id: c.lease_token for c in completions}
    leased = await conn.execute(
        select(_leads.c.id, _leads.c.hubspot_lease_token).where(_leads.c.id.in_(list(tokens)))
    )
    ids = {int(lead_id) for lead_id, token in leased if token == tokens[lead_id]}
    params = [
        {**{f"b_{name}": value for name, value in _outcome_row(c).items()}, "now": now}
        for c in completions
        if c.lead_id in ids
    ]
    if params:
        await conn.execute(_COMPLETE, params)
    # No history for a lead being erased: its scrub deletes its history, and a row written
    # after that would keep HubSpot's text about the person (SQLite's write lock orders the
    # two transactions).
    fenced = _fenced(completions, ids)
    erased: set[int] = set()
    if fenced:
        kept = await conn.execute(_kept_of(sorted(fenced)))
        erased = fenced - {int(row[0]) for row in kept}
    await lead_history.append(
        conn, _attempts(completions, ids, erased, now, worker_id, duration_ms)
    )
    if wake_until is not None and ids:
        await _wake_deferred(session, lead_ids=ids, now=now, until=wake_until)
    return ids


def _fenced(completions: Sequence[Completion], ids: set[int]) -> set[int]:
    return {c.lead_id for c in completions if c.lead_id not in ids and c.outcome is not None}


def _kept_of(lead_ids: list[int]) -> Select[int]:
    return select(_leads.c.id).where(
        _leads.c.id.in_(lead_ids), _leads.c.hubspot_sync_status != SyncStatus.ERASED.value
    )


def _attempts(
    completions: Sequence[Completion],
    ids: set[int],
    erased: set[int],
    now: dt.datetime,
    worker_id: str | None,
    duration_ms: int | None,
) -> list[Attempt]:
    """The history rows of a completion: each outcome, or `fenced`; none for erased leads."""
    return [
        Attempt(
            lead_id=c.lead_id,
            attempted_at=c.attempted_at or now,
            attempt=c.attempts,
            outcome=c.outcome if c.lead_id in ids else SyncOutcome.FENCED,
            http_status=c.http_status,
            error=c.error,
            duration_ms=duration_ms,
            worker_id=worker_id,
            hubspot_id=c.hubspot_id,
        )
        for c in completions
        if c.outcome is not None and c.lead_id not in erased
    ]


# The PostgreSQL statements of a completion, sent through asyncpg (store/pgdirect.py).
_COMPLETE_DIRECT = Direct.of(_COMPLETE_UNNEST)
# FOR SHARE: an erasure that has not cancelled these leads yet waits for this transaction, so
# its scrub sees (and deletes) the history rows written here.
_KEPT_DIRECT = Direct.of(
    select(_leads.c.id)
    .where(_leads.c.id == any_(_IDS), _leads.c.hubspot_sync_status != SyncStatus.ERASED.value)
    .with_for_update(read=True)
)
_WAKE_DIRECT = Direct.of(
    _leads.update()
    .where(
        _leads.c.hubspot_sync_status == SyncStatus.PENDING.value,
        _leads.c.hubspot_next_attempt_at > bindparam("now", type_=Lead.updated_at.type),
        _leads.c.hubspot_next_attempt_at <= bindparam("until", type_=Lead.updated_at.type),
        _leads.c.email.in_(select(_busy.c.email).where(_busy.c.id == any_(_IDS))),
        _leads.c.id != all_(_IDS),  # the batch's own leads keep their schedule
    )
    .values(
        hubspot_next_attempt_at=bindparam("now", type_=Lead.updated_at.type),
        updated_at=bindparam("now", type_=Lead.updated_at.type),
    )
)


async def _complete_direct(
    conn: AsyncConnection,
    *,
    completions: Sequence[Completion],
    now: dt.datetime,
    wake_until: dt.datetime | None,
    worker_id: str | None,
    duration_ms: int | None,
) -> set[int]:
    """`complete` on PostgreSQL: one UPDATE .. FROM unnest for the batch, then its history."""
    driver = await pgdirect.driver(conn)
    rows = [_outcome_row(c) for c in completions]
    arrays = {f"v_{name}": [row[name] for row in rows] for name, _ in _OUTCOME_FIELDS}
    written = await driver.fetch(
        _COMPLETE_DIRECT.sql, *_COMPLETE_DIRECT.args({**arrays, "now": now})
    )
    ids = {int(row[0]) for row in written}
    fenced = _fenced(completions, ids)
    erased: set[int] = set()
    if fenced:
        kept = await driver.fetch(_KEPT_DIRECT.sql, *_KEPT_DIRECT.args({"ids": sorted(fenced)}))
        erased = fenced - {int(row[0]) for row in kept}
    await lead_history.append_direct(
        driver, _attempts(completions, ids, erased, now, worker_id, duration_ms)
    )
    if wake_until is not None and ids:
        values = {"ids": sorted(ids), "now": now, "until": wake_until}
        await driver.execute(_WAKE_DIRECT.sql, *_WAKE_DIRECT.args(values))
    return ids


async def _wake_deferred(
    session: AsyncSession, *, lead_ids: set[int], now: dt.datetime, until: dt.datetime
) -> None:
    # The range on the due column keeps this an index probe that is empty nearly always.
    emails = select(Lead.email).where(Lead.id.in_(list(lead_ids)))
    await session.execute(
        update(Lead)
        .where(
            Lead.hubspot_sync_status == SyncStatus.PENDING.value,
            Lead.hubspot_next_attempt_at > now,
            Lead.hubspot_next_attempt_at <= until,
            Lead.email.in_(emails.scalar_subquery()),
            Lead.id.not_in(list(lead_ids)),  # the batch's own leads keep their schedule
        )
        .values(hubspot_next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


async def release_expired_leases(
    session: AsyncSession,
    *,
    now: dt.datetime,
    max_attempts: int | None = None,
    worker_id: str | None = None,
) -> int:
    """Put IN_PROGRESS rows whose worker died back in the queue, due now; return how many.

    The lost attempt counts, as on a re-claim: a lead that always kills its worker ends
    FAILED after `max_attempts` instead of looping. Each appends an `expired` history row.
    """
    expired = and_(
        Lead.hubspot_sync_status == SyncStatus.IN_PROGRESS.value,
        Lead.hubspot_lease_expires_at < now,
    )
    exhausted = (
        Lead.hubspot_sync_attempts + 1 >= max_attempts
        if max_attempts is not None
        else text("false")
    )
    result = await session.execute(
        update(Lead)
        .where(expired)
        .values(
            hubspot_sync_status=case(
                (exhausted, SyncStatus.FAILED.value), else_=SyncStatus.RETRYING.value
            ),
            hubspot_sync_attempts=Lead.hubspot_sync_attempts + 1,
            hubspot_error=LEASE_EXPIRED_ERROR,
            hubspot_lease_token=None,
            hubspot_lease_expires_at=None,
            hubspot_next_attempt_at=case((exhausted, None), else_=now),
            updated_at=now,
        )
        .returning(Lead.id, Lead.hubspot_sync_attempts)
        .execution_options(synchronize_session=False)
    )
    released = result.all()
    await lead_history.append(
        session,
        [
            Attempt(
                lead_id=int(lead_id),
                attempted_at=now,
                attempt=int(attempts),
                outcome=SyncOutcome.EXPIRED,
                error=LEASE_EXPIRED_ERROR,
                worker_id=worker_id,
            )
            for lead_id, attempts in released
        ],
    )
    return len(released)


def _transient_failure(transient_4xx: Collection[int]) -> object:
    # No answer at all, a 5xx, or one of the 4xx the caller calls transient.
    status = Lead.hubspot_last_http_status
    return or_(status.is_(None), status >= 500, status.in_(sorted(transient_4xx)))


async def requeue_failed(
    session: AsyncSession,
    *,
    now: dt.datetime,
    lead_ids: Sequence[int] | None = None,
    older_than_seconds: float | None = None,
    limit: int | None = None,
    transient_4xx: Collection[int] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> int:
    """Put matching FAILED leads back to PENDING with attempts reset; return how many.

    `transient_4xx`: only leads whose last failure was transient: no answer, a 5xx, or one of
    these 4xx statuses (the engine passes HubSpot's rule, hubspot/errors.py). `where`: more
    conditions on the leads table (the console's failed-queue filter, store/failed.py).
    """
    conditions = [Lead.hubspot_sync_status == SyncStatus.FAILED.value, *where]
    if lead_ids is not None:
        conditions.append(Lead.id.in_(list(lead_ids)))
    if older_than_seconds is not None:
        cutoff = now - dt.timedelta(seconds=older_than_seconds)
        conditions.append(
            or_(Lead.last_hubspot_attempt_at.is_(None), Lead.last_hubspot_attempt_at <= cutoff)
        )
    if transient_4xx is not None:
        conditions.append(_transient_failure(transient_4xx))  # type: ignore[arg-type]
    picked = select(Lead.id).where(and_(*conditions)).order_by(Lead.id)
    if limit is not None:
        picked = picked.limit(limit)
    result = await session.execute(
        update(Lead)
        .where(Lead.id.in_(picked.scalar_subquery()), Lead.hubspot_sync_status == "FAILED")
        .values(
            hubspot_sync_status=SyncStatus.PENDING.value,
            hubspot_sync_attempts=0,
            hubspot_next_attempt_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        await announce_new_leads(session)
    return count


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts per status and the age of the oldest due lead."""

    counts: dict[str, int]
    oldest_due_seconds: float | None


async def stats(session: AsyncSession, *, now: dt.datetime) -> QueueStats:
    """Return counts per status and how long the oldest due lead has been waiting."""
    rows = await session.execute(
        select(Lead.hubspot_sync_status, func.count()).group_by(Lead.hubspot_sync_status)
    )
    counts = {status.value: 0 for status in SyncStatus}
    counts.update({str(status): int(n) for status, n in rows.all()})
    oldest = (
        await session.execute(
            select(func.min(Lead.hubspot_next_attempt_at)).where(
                _UNFINISHED, Lead.hubspot_next_attempt_at <= now
            )
        )
    ).scalar_one()
    return QueueStats(
        counts=counts,
        oldest_due_seconds=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
    )


@dataclass(frozen=True, slots=True)
class SyncWindow:
    """The SYNCED outcomes recorded since a moment: the first and last stamps, how many, and how
    many share the first stamp (the batch that marks the start line)."""

    first: dt.datetime | None
    last: dt.datetime | None
    synced: int
    head: int


async def sync_window(session: AsyncSession, *, since: dt.datetime) -> SyncWindow:
    """Return the SYNCED outcomes stamped at or after `since` (throughput measurements)."""
    stamped = Lead.hubspot_synced_at >= since
    first, last, synced = (
        await session.execute(
            select(
                func.min(Lead.hubspot_synced_at), func.max(Lead.hubspot_synced_at), func.count()
            ).where(stamped)
        )
    ).one()
    head = 0
    if first is not None:
        head = (
            await session.execute(select(func.count()).where(Lead.hubspot_synced_at == first))
        ).scalar_one()
    return SyncWindow(first=first, last=last, synced=int(synced), head=int(head))


async def count_status(session: AsyncSession, status: SyncStatus) -> int:
    """Return how many leads are in one sync status (uses the status index)."""
    result = await session.execute(
        select(func.count()).where(Lead.hubspot_sync_status == status.value)
    )
    return int(result.scalar_one())
