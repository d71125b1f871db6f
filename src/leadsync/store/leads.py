"""Leads as the API stores and reads them: insert (idempotently), get, list.

The session functions run inside the caller's transaction (they flush, the caller commits).
POST /leads stores through a LeadIntake: on PostgreSQL a plain asyncpg pool, on SQLite the
sessions; both write the same columns and keep the same idempotency rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import asyncpg
from sqlalchemy import (
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    make_url,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.store.db import (
    CONNECT_TIMEOUT_SECONDS,
    DatabaseUnavailable,
    transaction,
    utcnow,
)
from leadsync.store.privacy import record_return
from leadsync.store.queue import NOTIFY_CHANNEL, announce_new_leads
from leadsync.store.tables import LEAD_FIELDS, Erasure, Lead, SyncStatus

_leads: Table = Lead.__table__  # type: ignore[assignment]
_erasures: Table = Erasure.__table__  # type: ignore[assignment]
# The keyed hash of an email (store/privacy.py: email_hash under LEADSYNC_ERASURE_KEY). With
# one, a new lead of an erased address is noted on its erasure: the person came back.
EmailHasher = Callable[[str], str]
# A plain, cached INSERT .. RETURNING id: the ORM's unit of work, or a statement rebuilt with
# literal values, cost several times the insert itself (measured with py-spy under wrk).
_INSERT = insert(_leads).returning(_leads.c.id)


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different body, or by a lead whose personal
    data was removed since (`erased`: nothing is left to compare the body with)."""

    def __init__(self, *, erased: bool = False) -> None:
        super().__init__("erased" if erased else "different body")
        self.erased = erased


# What the API returns of a stored lead: its id, its fields, when, and its sync status.
STORED_COLUMNS: Final = ("id", *LEAD_FIELDS, "created_at", "hubspot_sync_status")


@dataclass(frozen=True, slots=True)
class Stored:
    """The outcome of storing a lead: its STORED_COLUMNS, and whether this call created it."""

    row: Mapping[str, Any]
    created: bool

    @property
    def id(self) -> int:
        """The lead's id."""
        return int(self.row["id"])


class LeadIntake(Protocol):
    """Where POST /leads stores leads: one transaction per lead, announced on commit."""

    async def insert(
        self,
        *,
        fields: Mapping[str, str | None],
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> Stored:
        """Store a PENDING lead (or replay the first one for a repeated key)."""
        ...

    async def close(self) -> None:
        """Release what the intake holds (connections)."""
        ...


def new_lead_values(
    fields: Mapping[str, str | None], *, idempotency_key: str | None, fingerprint: str | None
) -> dict[str, Any]:
    """The columns a new lead is stored with, whichever intake stores it: PENDING, due now."""
    now = utcnow()
    return {
        **{name: fields.get(name) for name in LEAD_FIELDS},
        "idempotency_key": idempotency_key,
        "idempotency_fingerprint": fingerprint if idempotency_key else None,
        "created_at": now,
        "updated_at": now,
        "hubspot_sync_status": SyncStatus.PENDING.value,
        "hubspot_sync_attempts": 0,
        "hubspot_next_attempt_at": now,
    }


async def insert_lead(
    session: AsyncSession,
    *,
    fields: Mapping[str, str | None],
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    hashed: str | None = None,
) -> Stored:
    """Store a PENDING lead and announce it; replay the first lead for a repeated key.

    `fields`: a value (or None) for each name of LEAD_FIELDS. `fingerprint`: a hash of the
    request body, which a replay with the same key must match. `hashed`: the email's keyed
    hash, to note the lead on any erasure of the same address.
    """
    if idempotency_key:
        existing = await _by_key(session, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint)
    values = new_lead_values(fields, idempotency_key=idempotency_key, fingerprint=fingerprint)
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
    if hashed is not None:
        await record_return(session, hashed=hashed, lead_id=lead_id, now=values["created_at"])
    await announce_new_leads(session)
    return Stored(row={"id": lead_id, **values}, created=True)


def _replay(existing: Lead, fingerprint: str | None) -> Stored:
    if existing.scrubbed_at is not None:
        raise IdempotencyConflict(erased=True)
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyConflict
    return Stored(row={name: getattr(existing, name) for name in STORED_COLUMNS}, created=False)


class SessionIntake:
    """The intake through SQLAlchemy sessions: SQLite's path (and any database's)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, hasher: EmailHasher | None = None
    ) -> None:
        self._sessions = sessions
        self._hasher = hasher

    async def insert(
        self,
        *,
        fields: Mapping[str, str | None],
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> Stored:
        """Store the lead in one transaction of its own."""
        email = fields.get("email")
        hashed = self._hasher(email) if self._hasher is not None and email else None
        async with transaction(self._sessions) as session:
            return await insert_lead(
                session,
                fields=fields,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                hashed=hashed,
            )

    async def close(self) -> None:
        """Nothing to release: the sessions belong to the caller."""


# PostgreSQL's hot path: the same statements on a plain asyncpg pool, prepared once per
# connection. SQLAlchemy's session, its pool pre-ping and greenlet hops cost more than twice
# the insert itself per request (bench/RESULTS.md, "Intake: where the time goes").
_INSERT_COLUMNS = tuple(new_lead_values({}, idempotency_key=None, fingerprint=None))
_PG = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
# One statement does the whole hand-off: the INSERT, and the NOTIFY for the row it inserted
# (none when the idempotency key was taken). A single statement is its own transaction, so
# the row and its wake-up commit together, in one round trip instead of BEGIN, INSERT, NOTIFY,
# COMMIT. Compiled once by SQLAlchemy for asyncpg ($1, $2... in _PG_INSERT_ORDER).
_INSERTED = (
    postgresql.insert(_leads)
    .values({name: bindparam(f"v_{name}") for name in _INSERT_COLUMNS})
    .on_conflict_do_nothing(index_elements=[_leads.c.idempotency_key])
    .returning(_leads.c.id)
    .cte("inserted")
)
# An erasure of the same address notes the new lead (the hash is NULL without a key: no-op).
_RETURNED = (
    update(_erasures)
    .where(
        _erasures.c.email_hash == bindparam("v_email_hash"),
        _erasures.c.returned_at.is_(None),
        exists(select(_INSERTED.c.id)),
    )
    .values(
        returned_at=bindparam("v_created_at"),
        returned_lead_id=select(_INSERTED.c.id).scalar_subquery(),
    )
    .cte("returned")
)
_PG_INSERT_COMPILED = (
    select(
        _INSERTED.c.id,
        func.pg_notify(literal_column(f"'{NOTIFY_CHANNEL}'"), literal_column("''")),
    )
    .add_cte(_RETURNED)
    .compile(dialect=_PG)
)
_PG_INSERT = str(_PG_INSERT_COMPILED)
_PG_INSERT_ORDER = tuple(name.removeprefix("v_") for name in _PG_INSERT_COMPILED.positiontup or ())
_PG_BY_KEY = str(
    select(
        *(_leads.c[name] for name in (*STORED_COLUMNS, "idempotency_fingerprint", "scrubbed_at"))
    )
    .where(_leads.c.idempotency_key == bindparam("key"))
    .compile(dialect=_PG)
)


async def _reset_nothing(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip per request (UNLISTEN, RESET ALL...); the
    # intake's connections run only the two statements above and keep no session state.
    if conn.is_in_transaction():  # pragma: no cover - the intake opens none
        await conn.execute("ROLLBACK")


class PostgresIntake:
    """The intake on a plain asyncpg pool (PostgreSQL only)."""

    def __init__(self, pool: asyncpg.Pool, *, hasher: EmailHasher | None = None) -> None:
        self._pool = pool
        self._hasher = hasher

    @classmethod
    async def connect(
        cls, url: str, *, max_size: int, hasher: EmailHasher | None = None
    ) -> PostgresIntake:
        """Open the pool lazily: connections are made on first use, at most `max_size`."""
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT_SECONDS,
            reset=_reset_nothing,
        )
        return cls(pool, hasher=hasher)

    async def insert(
        self,
        *,
        fields: Mapping[str, str | None],
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> Stored:
        """Store the lead in one transaction: INSERT .. RETURNING and NOTIFY, or a replay."""
        values = new_lead_values(fields, idempotency_key=idempotency_key, fingerprint=fingerprint)
        email = fields.get("email")
        params = {
            **values,
            "email_hash": self._hasher(email) if self._hasher is not None and email else None,
        }
        try:
            async with self._pool.acquire() as conn:
                lead_id = await conn.fetchval(_PG_INSERT, *(params[k] for k in _PG_INSERT_ORDER))
                if lead_id is None:  # the key was used: the first lead decides
                    existing = await conn.fetchrow(_PG_BY_KEY, idempotency_key)
        except _PG_UNAVAILABLE as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        if lead_id is not None:
            return Stored(row={"id": lead_id, **values}, created=True)
        if existing is not None and existing["scrubbed_at"] is not None:
            raise IdempotencyConflict(erased=True)
        if existing is None or existing["idempotency_fingerprint"] != fingerprint:
            raise IdempotencyConflict
        return Stored(row={name: existing[name] for name in STORED_COLUMNS}, created=False)

    async def close(self) -> None:
        """Close the pool's connections."""
        await self._pool.close()


# asyncpg's ways of saying the server is not there (any other error is a bug or a constraint).
_PG_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


async def open_intake(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    *,
    max_size: int,
    hasher: EmailHasher | None = None,
) -> LeadIntake:
    """The fastest intake for the engine's database: asyncpg on PostgreSQL, else sessions."""
    if engine.dialect.name == "postgresql":
        url = engine.url.render_as_string(hide_password=False)
        return await PostgresIntake.connect(url, max_size=max_size, hasher=hasher)
    return SessionIntake(sessions, hasher=hasher)


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
