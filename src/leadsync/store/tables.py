"""The tables: `leads` (the lead, the seed's HubSpot columns, the queue columns),
`hubspot_gate`, `lead_sync_attempts` (each lead's sync history), `sync_workers` (worker
heartbeats) and `erasures` (GDPR erasure requests); the lead's field list and its statuses,
defined once for the whole code base.

Everything else derives from the definitions here: the claim's RETURNING list
(`store/queue.py`), the HubSpot property map (`engine/contact.py`), the API's shapes, which are
checked against `LEAD_FIELDS` at import (`usecases/schemas.py`), and the partial index's
predicate in the migrations (`UNFINISHED_SQL`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Final

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from leadsync.store.db import Base, UTCDateTime, utcnow

# The lead's own fields, in the order of the website's form. A new field is a column below,
# a migration, an entry here, and (if HubSpot should get it) a property in the property map.
LEAD_FIELDS: Final = ("email", "firstname", "lastname", "phone", "company", "message", "source")


class SyncStatus(StrEnum):
    """Where a lead is in its journey to HubSpot (see docs/architecture.md)."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    RETRYING = "RETRYING"
    SYNCED = "SYNCED"
    FAILED = "FAILED"
    # The person asked to be forgotten (docs/privacy.md): never sent again; its personal
    # fields are removed once HubSpot has deleted the contact.
    ERASED = "ERASED"


# A lead still on its way: the queue's partial index covers exactly these rows.
UNFINISHED: Final = (SyncStatus.PENDING, SyncStatus.RETRYING, SyncStatus.IN_PROGRESS)
# Literal SQL, so that PostgreSQL can prove the partial index applies even to the generic plan
# of a prepared statement; the migrations build the index with this very text.
UNFINISHED_SQL: Final = "hubspot_sync_status IN ({})".format(
    ", ".join(f"'{status.value}'" for status in UNFINISHED)
)

# Finished leads that still hold personal data: what LEADSYNC_RETENTION_DAYS applies to.
RETAINED_SQL: Final = (
    f"email IS NOT NULL AND hubspot_sync_status IN "
    f"('{SyncStatus.SYNCED.value}', '{SyncStatus.FAILED.value}')"
)

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

    # LEAD_FIELDS, in that order (checked below). Every one of them is personal data: an
    # erasure or the retention period sets them to NULL (store/privacy.py).
    email: Mapped[str | None] = mapped_column(String(254), index=True)
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

    # Privacy (store/privacy.py): when the personal fields were removed, and for an erased
    # lead the keyed hash (HMAC) of its email, so a later request can be matched to it.
    scrubbed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "ix_leads_due",
            "hubspot_next_attempt_at",
            postgresql_where=text(UNFINISHED_SQL),
            sqlite_where=text(UNFINISHED_SQL),
        ),
        Index("ix_leads_hubspot_sync_status_id", "hubspot_sync_status", "id"),
        # An access request finds an erased person's rows by the hash (few rows: partial).
        Index(
            "ix_leads_email_hash",
            "email_hash",
            postgresql_where=text("email_hash IS NOT NULL"),
            sqlite_where=text("email_hash IS NOT NULL"),
        ),
        # The retention pass walks the oldest finished leads that still hold personal data.
        Index(
            "ix_leads_retention",
            "created_at",
            postgresql_where=text(RETAINED_SQL),
            sqlite_where=text(RETAINED_SQL),
        ),
    )


def _fields_in_table() -> tuple[str, ...]:
    names = [column.name for column in Lead.__table__.columns]
    start = names.index(LEAD_FIELDS[0])
    return tuple(names[start : start + len(LEAD_FIELDS)])


if _fields_in_table() != LEAD_FIELDS:  # pragma: no cover - a mistake caught at import
    raise RuntimeError(f"Lead's columns {_fields_in_table()} differ from LEAD_FIELDS")


GATE_NAME: Final = "hubspot"


class HubSpotGate(Base):
    """One row per HubSpot account: next free request slot, pause state, last reported limits."""

    __tablename__ = "hubspot_gate"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Earliest time the next request may be sent (GCRA "theoretical arrival time").
    next_slot_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    pause_detail: Mapped[str | None] = mapped_column(Text)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reported_max: Mapped[int | None] = mapped_column(Integer)
    reported_remaining: Mapped[int | None] = mapped_column(Integer)
    reported_interval_ms: Mapped[int | None] = mapped_column(Integer)
    daily_remaining: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class SyncOutcome(StrEnum):
    """What one HubSpot round did to a lead, as its history records it.

    The engine's outcome kinds (`engine/writer.py: ResultKind`, checked there), plus what only
    the store sees: `fenced` (the outcome came after the lease moved to another worker, so it
    was not written) and `expired` (the worker died; reconciliation or a claim took the lead
    back and counted the attempt).
    """

    SYNCED = "synced"
    RETRY = "retry"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    AUTH_PAUSED = "auth_paused"
    RELEASED = "released"
    FENCED = "fenced"
    EXPIRED = "expired"


# The longest error text one history row keeps (the lead's own hubspot_error is kept whole).
HISTORY_ERROR_CHARS: Final = 500


class LeadSyncAttempt(Base):
    """One HubSpot outcome of one lead; append-only, pruned after LEADSYNC_HISTORY_DAYS."""

    __tablename__ = "lead_sync_attempts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("leads.id", ondelete="CASCADE"),
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The lead's attempt count after this outcome (rate limits and releases use none up).
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    hubspot_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        # A lead's history, in order (the lead page, `leadsync lead`, GET /internal/leads/{id}).
        Index("ix_lead_sync_attempts_lead_id_id", "lead_id", "id"),
        # Pruning walks the oldest rows; the overview's chart counts the last hour's outcomes
        # from the index alone.
        Index("ix_lead_sync_attempts_attempted_at_outcome", "attempted_at", "outcome"),
        # The overview's "last HubSpot error": one step down a small index.
        Index(
            "ix_lead_sync_attempts_errors",
            "id",
            postgresql_where=text("error IS NOT NULL"),
            sqlite_where=text("error IS NOT NULL"),
        ),
    )


class SyncWorker(Base):
    """A worker's heartbeat, written at each reconciliation pass (the console's worker list)."""

    __tablename__ = "sync_workers"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ErasureStatus(StrEnum):
    """Where an erasure request is (docs/privacy.md)."""

    REQUESTED = "REQUESTED"  # accepted: the email's leads are cancelled; HubSpot is next
    IN_HUBSPOT = "IN_HUBSPOT"  # a worker holds it: the GDPR delete call is in flight
    RETRYING = "RETRYING"  # HubSpot answered with a transient error: tried again later
    # HubSpot deleted the contact, but a write of the address was in flight or recent at the
    # request: HubSpot may still apply it, so a second delete follows at `confirm_after`.
    CONFIRMING = "CONFIRMING"
    COMPLETED = "COMPLETED"  # HubSpot deleted the contact and the rows are scrubbed
    FAILED = "FAILED"  # HubSpot refused it for good: an operator retries it


# Erasures a worker takes (IN_HUBSPOT only once its lease has expired).
DUE_ERASURES: Final = (
    ErasureStatus.REQUESTED,
    ErasureStatus.RETRYING,
    ErasureStatus.CONFIRMING,
    ErasureStatus.IN_HUBSPOT,
)
# Until an erasure is COMPLETED, new leads of its email wait (they are a new consent, synced
# after the GDPR delete, never deleted by it).
OPEN_ERASURE_SQL: Final = f"status <> '{ErasureStatus.COMPLETED.value}'"
DUE_ERASURE_SQL: Final = "status IN ({})".format(
    ", ".join(f"'{status.value}'" for status in DUE_ERASURES)
)


class Erasure(Base):
    """One request to forget an email, carried through to HubSpot (art. 17 GDPR).

    `email` is kept only until HubSpot has deleted the contact, then set to NULL; the keyed
    hash stays, so a later lead or access request of the same address can be matched.
    """

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # The first GDPR delete HubSpot answered 204, and when the confirming one is due (set when
    # a write of the address was in flight or recent at the request; docs/privacy.md).
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    confirm_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    leads_cancelled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    leads_scrubbed: Mapped[int | None] = mapped_column(Integer)
    # The first lead of the same email stored after the request: the person came back.
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    returned_lead_id: Mapped[int | None] = mapped_column(BigIntId)

    __table_args__ = (
        Index(
            "ix_erasures_due",
            "next_attempt_at",
            postgresql_where=text(DUE_ERASURE_SQL),
            sqlite_where=text(DUE_ERASURE_SQL),
        ),
        # The claim and the send fence ask "is this email being erased?" per lead.
        Index(
            "ix_erasures_open_email",
            "email",
            postgresql_where=text(OPEN_ERASURE_SQL),
            sqlite_where=text(OPEN_ERASURE_SQL),
        ),
    )
