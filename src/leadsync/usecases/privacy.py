"""Erasure and access requests (GDPR arts. 17 and 15), for the routes, the CLI and the console.

An address travels only in a request body, never in a URL: access logs and proxies keep URLs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings, env_name
from leadsync.emails import EMAIL_PATTERN, MAX_EMAIL, canonical_email
from leadsync.limits import HISTORY_SHOWN
from leadsync.store import history, privacy
from leadsync.store.db import transaction, utcnow
from leadsync.store.fence import SendFence
from leadsync.store.tables import Erasure, ErasureStatus
from leadsync.usecases.leads import with_history
from leadsync.usecases.schemas import LeadWithHistory

# Who asked, as the erasure records it.
Requester = Literal["api", "cli", "console"]


class ErasureKeyMissing(Exception):
    """No LEADSYNC_ERASURE_KEY: an erasure cannot keep the hash that stands for the address."""

    def __init__(self) -> None:
        super().__init__(
            f"erasure requests need a secret key for the email hash they keep: set "
            f"{env_name('erasure_key')} (at least 16 characters) or "
            f"{env_name('erasure_key_file')}, see docs/privacy.md"
        )


def hasher(settings: Settings) -> Callable[[str], str] | None:
    """Return the keyed email hash under the configured key, or None without a key."""
    if settings.read_erasure_key() is None:
        return None

    def hashed(email: str) -> str:
        key = settings.read_erasure_key()
        if key is None:  # the key file was emptied while running
            raise ErasureKeyMissing
        return privacy.email_hash(key, email)

    return hashed


def _hash(settings: Settings, email: str) -> str:
    key = settings.read_erasure_key()
    if key is None:
        raise ErasureKeyMissing
    return privacy.email_hash(key, email)


class EmailIn(BaseModel):
    """One person's address, in a body (never in a URL)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_EMAIL,
            json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
            description="The address, in any casing: matched in its canonical form "
            "(docs/api.md, 'Email addresses').",
        ),
    ]

    @field_validator("email")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_email(value.strip())


class ErasureOut(BaseModel):
    """An erasure request and how far it got (the address itself is never shown)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: ErasureStatus = Field(
        description="REQUESTED (leads cancelled, HubSpot next), IN_HUBSPOT (the GDPR delete "
        "is in flight), RETRYING (HubSpot failed transiently), CONFIRMING (deleted; a write "
        "of the address was in flight or recent, so a second delete follows at "
        "`confirm_after`), COMPLETED, FAILED (HubSpot refused: `error` says why; an operator "
        "retries it)."
    )
    requested_at: dt.datetime
    requested_by: str
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    attempts: int = Field(description="GDPR delete calls made so far.")
    next_attempt_at: dt.datetime | None
    http_status: int | None = Field(description="HubSpot's last answer.")
    error: str | None = Field(description="HubSpot's reason for the last failure.")
    deleted_at: dt.datetime | None = Field(
        default=None, description="When HubSpot first answered the GDPR delete with 204."
    )
    confirm_after: dt.datetime | None = Field(
        default=None,
        description="When the confirming second delete is due (null: one delete is enough).",
    )
    leads_cancelled: int = Field(description="Leads of the address the request cancelled.")
    leads_scrubbed: int | None = Field(description="Leads whose personal fields were removed.")
    returned_at: dt.datetime | None = Field(
        description="When a new lead of the same address arrived after the request (a new "
        "consent: it is synced once the erasure completed)."
    )
    returned_lead_id: int | None


class ErasureAccepted(ErasureOut):
    """The answer to an erasure request: the erasure, and whether it is a new one."""

    created: bool = Field(description="False when an open erasure of the address was reused.")


class ErasurePage(BaseModel):
    """One page of erasures, newest first; pass `next_after` as `after` for the next page."""

    items: list[ErasureOut]
    next_after: int | None


class SubjectOut(BaseModel):
    """Everything leadsync holds about one address (art. 15 GDPR)."""

    email: str
    leads: list[LeadWithHistory] = Field(
        description="Every lead of the address, oldest first, with its sync history; leads "
        "whose personal data was removed appear scrubbed (matched by the keyed hash)."
    )
    erasures: list[ErasureOut] = Field(description="Every erasure request of the address.")
    matched_by_hash: bool = Field(
        description="Whether scrubbed leads and erasures were looked up too (needs "
        "LEADSYNC_ERASURE_KEY)."
    )


async def request_erasure(
    sessions: async_sessionmaker[AsyncSession],
    *,
    fence: SendFence,
    settings: Settings,
    email: str,
    requested_by: Requester,
) -> ErasureAccepted:
    """Record an erasure and cancel the address's leads, after the writes in flight ended."""
    hashed = _hash(settings, email)
    async with fence.erasing() as session:
        done = await privacy.request_erasure(
            session,
            email=email,
            hashed=hashed,
            requested_by=requested_by,
            now=utcnow(),
            confirm_seconds=settings.erasure_confirm_seconds,
        )
        out = ErasureOut.model_validate(done.erasure)
    return ErasureAccepted(**out.model_dump(), created=done.created)


async def get_erasure(
    sessions: async_sessionmaker[AsyncSession], *, erasure_id: int
) -> ErasureOut | None:
    """Return one erasure, or None."""
    async with sessions() as session:
        erasure = await privacy.get_erasure(session, erasure_id=erasure_id)
        return None if erasure is None else ErasureOut.model_validate(erasure)


async def list_erasures(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: ErasureStatus | None,
    limit: int,
    after: int | None,
) -> ErasurePage:
    """Return one page of erasures, newest first."""
    async with sessions() as session:
        rows = await privacy.list_erasures(session, status=status, limit=limit, after=after)
    items = [ErasureOut.model_validate(row) for row in rows]
    return ErasurePage(items=items, next_after=items[-1].id if len(items) == limit else None)


class NotFailed(Exception):
    """Only a FAILED erasure can be retried by hand; the others are on their way."""

    def __init__(self, erasure: ErasureOut) -> None:
        super().__init__(f"erasure {erasure.id} is {erasure.status.value}, not FAILED")
        self.erasure = erasure


async def retry_erasure(
    sessions: async_sessionmaker[AsyncSession], *, erasure_id: int
) -> ErasureOut | None:
    """Arm a FAILED erasure again; None if there is no such erasure; NotFailed otherwise."""
    async with transaction(sessions) as session:
        before: Erasure | None = await privacy.get_erasure(session, erasure_id=erasure_id)
        if before is None:
            return None
        status = before.status
        erasure = await privacy.retry_failed_erasure(session, erasure_id=erasure_id, now=utcnow())
        assert erasure is not None
        out = ErasureOut.model_validate(erasure)
    if status != ErasureStatus.FAILED.value:
        raise NotFailed(out)
    return out


async def lookup_subject(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, email: str
) -> SubjectOut:
    """Return every lead of the address with its history, and its erasures."""
    key = settings.read_erasure_key()
    hashed = None if key is None else privacy.email_hash(key, email)
    async with sessions() as session:
        leads = await privacy.subject_leads(session, email=email, hashed=hashed)
        erasures = [] if hashed is None else await privacy.subject_erasures(session, hashed=hashed)
        rows = {
            lead.id: await history.for_lead(session, lead_id=lead.id, limit=HISTORY_SHOWN)
            for lead in leads
        }
    return SubjectOut(
        email=email,
        leads=[with_history(lead, rows[lead.id]) for lead in leads],
        erasures=[ErasureOut.model_validate(erasure) for erasure in erasures],
        matched_by_hash=hashed is not None,
    )


async def erasure_counts(sessions: async_sessionmaker[AsyncSession]) -> privacy.ErasureCounts:
    """Erasures per status and the oldest open one (the gauges and the console)."""
    async with sessions() as session:
        return await privacy.erasure_counts(session)
