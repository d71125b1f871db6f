"""The `leads` table: the lead itself, the seed's HubSpot columns and the queue columns."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from leadsync.db import Base, UTCDateTime, utcnow


class SyncStatus(StrEnum):
    """Where a lead is in its journey to HubSpot (see docs/architecture.md)."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    RETRYING = "RETRYING"
    SYNCED = "SYNCED"
    FAILED = "FAILED"


UNFINISHED = (SyncStatus.PENDING, SyncStatus.RETRYING, SyncStatus.IN_PROGRESS)
_UNFINISHED_SQL = text("hubspot_sync_status IN ('PENDING', 'RETRYING', 'IN_PROGRESS')")

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Lead(Base):
    """One lead from the website; its sync columns are its place in the HubSpot queue."""

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    email: Mapped[str] = mapped_column(String(254), index=True)
    firstname: Mapped[str | None] = mapped_column(String(100))
    lastname: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    company: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # SHA-256 of the canonical request body, to tell a replay from a different body.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))

    # The seed's columns: names and types are a contract with the ops team.
    hubspot_id: Mapped[str | None] = mapped_column(String(255))
    hubspot_sync_status: Mapped[str] = mapped_column(
        String(32), default=SyncStatus.PENDING.value, server_default=SyncStatus.PENDING.value
    )
    hubspot_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    hubspot_error: Mapped[str | None] = mapped_column(Text)
    hubspot_sync_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_hubspot_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    # Queue columns. For IN_PROGRESS rows next_attempt_at equals the lease expiry, so one
    # column and one partial index answer "what is due" for fresh, retrying and orphaned rows.
    hubspot_next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    hubspot_lease_token: Mapped[str | None] = mapped_column(String(36))
    hubspot_lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    hubspot_last_http_status: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index(
            "ix_leads_due",
            "hubspot_next_attempt_at",
            postgresql_where=_UNFINISHED_SQL,
            sqlite_where=_UNFINISHED_SQL,
        ),
        Index("ix_leads_hubspot_sync_status_id", "hubspot_sync_status", "id"),
    )
