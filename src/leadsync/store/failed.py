"""The failed queue as the console reads it: FAILED leads newest first (keyset pages), filtered
by HTTP status, error class, age and email; counted; requeued by the same filter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadsync.store import queue
from leadsync.store.tables import Lead, SyncStatus

# Ages a failure can be filtered by: failed within the last hour, day, week, or before that.
AGES: Final[dict[str, tuple[str, dt.timedelta]]] = {
    "1h": ("in the last hour", dt.timedelta(hours=1)),
    "24h": ("in the last 24 hours", dt.timedelta(days=1)),
    "7d": ("in the last 7 days", dt.timedelta(days=7)),
    "older": ("more than 7 days ago", dt.timedelta(days=7)),
}
# `http_status` filter value for a failure with no HTTP answer (timeout, connection error).
NO_STATUS: Final = 0
# The longest error class kept: the error text up to its first colon.
ERROR_CLASS_CHARS: Final = 64
_FAILED = Lead.hubspot_sync_status == SyncStatus.FAILED.value


@dataclass(frozen=True, slots=True)
class FailedFilter:
    """Which FAILED leads: every field is optional and they combine with AND."""

    http_status: int | None = None  # NO_STATUS: no HTTP answer at all
    error_class: str | None = None
    age: str | None = None  # a key of AGES
    email: str | None = None  # a case-insensitive part of the email
    upto_id: int | None = None  # only ids up to this one (what a confirmation counted)


def error_class(dialect: str) -> ColumnElement[str]:
    """The error's class: its text up to the first colon, without a leading `HTTP nnn `.

    `HTTP 400 VALIDATION_ERROR: ...` and `INVALID_EMAIL: ...` (a per-input error) give
    `VALIDATION_ERROR` and `INVALID_EMAIL`; `lease expired before ...: ...` gives its sentence.
    """
    error = func.coalesce(Lead.hubspot_error, "")
    body = case(
        (error.like("HTTP ___ %"), func.substr(error, 10)),
        else_=error,
    )
    position = (
        func.strpos(body + ":", ":") if dialect == "postgresql" else func.instr(body + ":", ":")
    )
    return func.substr(func.substr(body, 1, position - 1), 1, ERROR_CLASS_CHARS)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions(flt: FailedFilter, *, now: dt.datetime, dialect: str) -> list[ColumnElement[bool]]:
    """The filter as SQL conditions on the leads table (FAILED itself not included)."""
    where: list[ColumnElement[bool]] = []
    if flt.http_status == NO_STATUS:
        where.append(Lead.hubspot_last_http_status.is_(None))
    elif flt.http_status is not None:
        where.append(Lead.hubspot_last_http_status == flt.http_status)
    if flt.error_class:
        where.append(error_class(dialect) == flt.error_class)
    if flt.age in AGES:
        cutoff = now - AGES[flt.age][1]
        attempted = Lead.last_hubspot_attempt_at
        if flt.age == "older":
            where.append(or_(attempted.is_(None), attempted < cutoff))
        else:
            where.append(attempted >= cutoff)
    if flt.email:
        pattern = f"%{_escape_like(flt.email.strip().lower())}%"
        where.append(Lead.email.like(pattern, escape="\\"))
    if flt.upto_id is not None:
        where.append(Lead.id <= flt.upto_id)
    return where


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _matching(session: AsyncSession, flt: FailedFilter, now: dt.datetime) -> Select[Any]:
    return select(Lead).where(_FAILED, *conditions(flt, now=now, dialect=_dialect(session)))


async def page(
    session: AsyncSession,
    *,
    flt: FailedFilter,
    now: dt.datetime,
    before: int | None,
    limit: int,
) -> tuple[list[Lead], int | None]:
    """Return up to `limit` matching FAILED leads, newest first, below id `before`, and the
    `before` of the next page (None on the last)."""
    query = _matching(session, flt, now).order_by(Lead.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Lead.id < before)
    leads = list((await session.execute(query)).scalars())
    more = len(leads) > limit
    leads = leads[:limit]
    return leads, (leads[-1].id if more and leads else None)


async def count(
    session: AsyncSession, *, flt: FailedFilter, now: dt.datetime, lead_ids: Sequence[int] = ()
) -> tuple[int, int]:
    """Return how many FAILED leads match (only `lead_ids` among them, when given), and the
    highest matching id (0 when none)."""
    where = conditions(flt, now=now, dialect=_dialect(session))
    if lead_ids:
        where.append(Lead.id.in_(list(lead_ids)))
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.max(Lead.id), 0)).where(_FAILED, *where)
        )
    ).one()
    return int(row[0]), int(row[1])


async def requeue(
    session: AsyncSession, *, flt: FailedFilter, now: dt.datetime, lead_ids: Sequence[int] = ()
) -> int:
    """Requeue the matching FAILED leads (only `lead_ids` among them, when given)."""
    return await queue.requeue_failed(
        session,
        now=now,
        lead_ids=list(lead_ids) or None,
        where=conditions(flt, now=now, dialect=_dialect(session)),
    )


async def facets(
    session: AsyncSession, *, limit: int = 50
) -> tuple[list[tuple[int, int]], list[tuple[str, int]]]:
    """The HTTP statuses (NO_STATUS for none) and error classes among FAILED leads, with counts,
    most frequent first: the filter's choices."""
    status = func.coalesce(Lead.hubspot_last_http_status, literal(NO_STATUS))
    statuses = await session.execute(
        select(status, func.count())
        .where(_FAILED)
        .group_by(status)
        .order_by(func.count().desc())
        .limit(limit)
    )
    klass = error_class(_dialect(session)).label("klass")
    classes = await session.execute(
        select(klass, func.count())
        .where(_FAILED)
        .group_by(klass)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return (
        [(int(s), int(n)) for s, n in statuses.all()],
        [(str(k), int(n)) for k, n in classes.all() if k],
    )
