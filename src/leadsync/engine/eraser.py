"""Erasures carried through to HubSpot: each open request becomes one GDPR delete, then the
email's rows are scrubbed (docs/privacy.md).

The delete goes through the same budget, pauses and backoff as the sync. It is safe to send
twice: deleting an address that has no contact any more only blocklists it. So a worker
killed mid-call, or an answer lost after HubSpot applied it, ends in one completed erasure:
the lease runs out, another worker sends it again, and that one records the completion
(fenced by the lease token, like a lead's outcome).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.engine.gate import Gate, Paused, ProbeDue
from leadsync.engine.retry import RetryPolicy, decide
from leadsync.hubspot.client import HubSpotClient
from leadsync.hubspot.errors import (
    AuthError,
    HubSpotError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from leadsync.logging import get_logger
from leadsync.store import privacy
from leadsync.store.db import transaction, utcnow
from leadsync.store.privacy import ClaimedErasure
from leadsync.store.tables import ErasureStatus

log = get_logger(__name__)

# Erasures taken per claim: each is one call, paced by the shared budget.
ERASURE_CLAIM = 10
# A transient failure never fails an erasure for good: it retries, backing off to the cap.
_NEVER = 2**31
# What stands for the address in an error text kept on the erasure (HubSpot may quote it).
ADDRESS = "[address]"


class ErasureOutcome(StrEnum):
    """What one GDPR delete call did (the metric's label)."""

    COMPLETED = "completed"
    RETRY = "retry"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    AUTH_PAUSED = "auth_paused"
    CONFIRMING = "confirming"  # deleted; a second delete follows (docs/privacy.md)
    RELEASED = "released"  # never sent: the gate is paused
    FENCED = "fenced"  # another worker took it over meanwhile: its outcome counts


class Eraser:
    """Takes due erasures and executes them; any number of workers may run one."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: HubSpotClient,
        gate: Gate,
        policy: RetryPolicy,
        lease_seconds: float,
        rng: random.Random | None = None,
        on_outcome: Callable[[ErasureOutcome], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._gate = gate
        self._policy = RetryPolicy(
            base_seconds=policy.base_seconds, cap_seconds=policy.cap_seconds, max_attempts=_NEVER
        )
        self._lease_seconds = lease_seconds
        self._rng = rng or random.Random()
        self._on_outcome = on_outcome

    async def has_due(self) -> bool:
        """Return whether an erasure waits for a worker (one indexed probe)."""
        async with self._sessions() as session:
            return await privacy.has_due_erasure(session, now=utcnow())

    async def run_due(self) -> int:
        """Execute the due erasures, a claim at a time; return how many calls were made."""
        if not await self.has_due():
            return 0
        try:
            await self._gate.check()
        except Paused:
            return 0
        async with transaction(self._sessions) as session:
            claimed = await privacy.claim_erasures(
                session, limit=ERASURE_CLAIM, lease_seconds=self._lease_seconds, now=utcnow()
            )
        calls = 0
        for index, erasure in enumerate(claimed):
            try:
                await self._gate.acquire()
            except (Paused, ProbeDue) as exc:
                until = exc.until if isinstance(exc, Paused) else None
                for waiting in claimed[index:]:
                    await self._give_back(waiting, until)
                break
            calls += 1
            await self._execute(erasure)
        return calls

    async def _execute(self, erasure: ClaimedErasure) -> None:
        try:
            info = await self._client.gdpr_delete(email=erasure.email)
        except HubSpotError as exc:
            await self._gate.observe(exc.rate_limit)
            await self._failed(erasure, exc)
            return
        await self._gate.observe(info)
        await self._gate.write_succeeded()
        now = utcnow()
        if erasure.confirm_after is not None and now < erasure.confirm_after:
            # A write of the address may still land at HubSpot: delete again once it cannot.
            async with transaction(self._sessions) as session:
                kept = await privacy.record_erasure_attempt(
                    session,
                    erasure_id=erasure.id,
                    token=erasure.token,
                    status=ErasureStatus.CONFIRMING,
                    now=now,
                    next_attempt_at=erasure.confirm_after,
                    http_status=204,
                    deleted_at=now,
                )
            self._report(erasure, ErasureOutcome.CONFIRMING if kept else ErasureOutcome.FENCED)
            return
        async with transaction(self._sessions) as session:
            scrubbed = await privacy.complete_erasure(
                session, erasure_id=erasure.id, token=erasure.token, http_status=204, now=utcnow()
            )
        if scrubbed is None:
            self._report(erasure, ErasureOutcome.FENCED)
            return
        self._report(erasure, ErasureOutcome.COMPLETED, leads_scrubbed=scrubbed)

    async def _failed(self, erasure: ClaimedErasure, exc: HubSpotError) -> None:
        now = utcnow()
        error = str(exc).replace(erasure.email, ADDRESS)
        if isinstance(exc, AuthError):
            await self._gate.pause_for_auth(detail=error)
            await self._give_back(erasure, None, outcome=ErasureOutcome.AUTH_PAUSED)
            return
        if isinstance(exc, PermanentError):
            await self._record(
                erasure,
                ErasureOutcome.FAILED,
                status=ErasureStatus.FAILED,
                next_attempt_at=None,
                exc=exc,
                error=error,
            )
            return
        # A 409 (a concurrent write of the contact), a 5xx, a timeout: try again later.
        outcome = ErasureOutcome.RETRY
        retry_after = exc.retry_after_seconds
        if isinstance(exc, TransientError):
            retry_after = max(retry_after or 0.0, exc.min_wait_seconds or 0.0) or None
        if isinstance(exc, RateLimitedError):
            outcome = ErasureOutcome.RATE_LIMITED
            until = await self._gate.pause_for_rate_limit(
                retry_after_seconds=exc.retry_after_seconds,
                interval_seconds=exc.interval_seconds,
                daily=exc.is_daily,
                detail=error,
            )
            if isinstance(until, dt.datetime):
                retry_after = max(retry_after or 0.0, (until - now).total_seconds())
        decision = decide(
            policy=self._policy,
            attempts=erasure.attempts,
            rng=self._rng,
            retry_after_seconds=retry_after,
        )
        await self._record(
            erasure,
            outcome,
            status=ErasureStatus.RETRYING,
            next_attempt_at=now + dt.timedelta(seconds=decision.delay_seconds),
            exc=exc,
            error=error,
        )

    async def _give_back(
        self,
        erasure: ClaimedErasure,
        until: dt.datetime | None,
        *,
        outcome: ErasureOutcome = ErasureOutcome.RELEASED,
    ) -> None:
        """Return an erasure that was not sent, its attempt not counted, due when the pause
        ends (a credential pause: as soon as the gate lets calls through again)."""
        now = utcnow()
        status = ErasureStatus.RETRYING if erasure.attempts > 1 else ErasureStatus.REQUESTED
        if erasure.deleted_at is not None:
            status = ErasureStatus.CONFIRMING
        async with transaction(self._sessions) as session:
            await privacy.record_erasure_attempt(
                session,
                erasure_id=erasure.id,
                token=erasure.token,
                status=status,
                now=now,
                next_attempt_at=max(until or now, now),
                counted=False,
            )
        self._report(erasure, outcome)

    async def _record(
        self,
        erasure: ClaimedErasure,
        outcome: ErasureOutcome,
        *,
        status: ErasureStatus,
        next_attempt_at: dt.datetime | None,
        exc: HubSpotError,
        error: str,
    ) -> None:
        http_status = exc.http_status
        async with transaction(self._sessions) as session:
            kept = await privacy.record_erasure_attempt(
                session,
                erasure_id=erasure.id,
                token=erasure.token,
                status=status,
                now=utcnow(),
                next_attempt_at=next_attempt_at,
                http_status=http_status,
                error=error,
            )
        # HubSpot's text stays on the erasure (for the operator): it may quote the person's
        # name or anything else of the contact, so the log line names the kind of error only.
        self._report(
            erasure,
            outcome if kept else ErasureOutcome.FENCED,
            http_status=http_status,
            category=exc.category,
            error_type=type(exc).__name__,
        )

    def _report(self, erasure: ClaimedErasure, outcome: ErasureOutcome, **fields: object) -> None:
        # The erasure's id only: the address never reaches a log line.
        event = log.info if outcome in _QUIET else log.warning
        event(
            f"privacy.erasure.{outcome.value}",
            erasure_id=erasure.id,
            attempt=erasure.attempts,
            **fields,
        )
        if self._on_outcome is not None:
            self._on_outcome(outcome)


_QUIET = frozenset(
    {
        ErasureOutcome.COMPLETED,
        ErasureOutcome.CONFIRMING,
        ErasureOutcome.RELEASED,
        ErasureOutcome.FENCED,
    }
)
