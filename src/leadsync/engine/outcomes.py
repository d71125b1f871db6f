"""Turn a lead's result into the sync columns to write: the state machine's transitions."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

from leadsync.engine.retry import RetryPolicy, Verdict, decide
from leadsync.engine.writer import LeadResult, ResultKind
from leadsync.store.queue import Completion, LeadSnapshot
from leadsync.store.tables import SyncOutcome, SyncStatus


def to_completion(
    *,
    result: LeadResult,
    lead: LeadSnapshot,
    policy: RetryPolicy,
    rng: random.Random,
    now: dt.datetime,
    resume_at: dt.datetime | None = None,
) -> Completion:
    """Return the columns for one lead's outcome (fenced by the lease it was claimed with),
    and the outcome its history row records (a retry that used up the last attempt: failed).
    """
    if result.kind is ResultKind.SYNCED:  # nearly every lead: built in one step
        return _attempted(
            result,
            lead,
            now,
            status=SyncStatus.SYNCED,
            error=None,
            hubspot_id=result.hubspot_id,
            synced_at=now,
            outcome=SyncOutcome.SYNCED,
        )
    completion = _transition(
        result=result, lead=lead, policy=policy, rng=rng, now=now, resume_at=resume_at
    )
    outcome = SyncOutcome(result.kind.value)
    if result.kind is ResultKind.RETRY and completion.status is SyncStatus.FAILED:
        outcome = SyncOutcome.FAILED
    if completion.keep_error and result.error:
        # The lead keeps its last error (keep_error); the history row shows this round's.
        completion = replace(completion, error=result.error)
    return replace(completion, outcome=outcome)


def _attempted(
    result: LeadResult,
    lead: LeadSnapshot,
    now: dt.datetime,
    *,
    status: SyncStatus,
    error: str | None,
    hubspot_id: str | None = None,
    synced_at: dt.datetime | None = None,
    outcome: SyncOutcome | None = None,
) -> Completion:
    """The columns of a lead that was sent: one attempt more, made `now`."""
    return Completion(
        lead_id=lead.id,
        lease_token=lead.lease_token,
        status=status,
        attempts=lead.attempts + 1,
        attempted_at=now,
        http_status=result.http_status,
        hubspot_id=hubspot_id,
        synced_at=synced_at,
        error=error,
        outcome=outcome,
    )


def _transition(
    *,
    result: LeadResult,
    lead: LeadSnapshot,
    policy: RetryPolicy,
    rng: random.Random,
    now: dt.datetime,
    resume_at: dt.datetime | None,
) -> Completion:
    kind = result.kind
    attempted = _attempted(
        result, lead, now, status=SyncStatus.FAILED, error=result.error or "failed"
    )
    if kind is ResultKind.FAILED:
        return attempted
    if kind is ResultKind.RETRY:
        decision = decide(
            policy=policy,
            attempts=attempted.attempts,
            rng=rng,
            retry_after_seconds=result.retry_after_seconds,
        )
        if decision.verdict is Verdict.FAIL:
            return attempted
        delay = dt.timedelta(seconds=decision.delay_seconds)
        return _with(attempted, status=SyncStatus.RETRYING, next_attempt_at=now + delay)
    if kind is ResultKind.RATE_LIMITED:
        # One shared budget ran out: not the lead's fault, so no attempt is used up. The lead
        # waits for the gate's pause (capped there) and for Retry-After up to the retry cap.
        wait = dt.timedelta(seconds=min(result.retry_after_seconds or 0.0, policy.cap_seconds))
        return _with(
            attempted,
            status=SyncStatus.RETRYING if lead.attempts else SyncStatus.PENDING,
            attempts=lead.attempts,
            next_attempt_at=max(resume_at or now, now + wait),
        )
    # AUTH_PAUSED and RELEASED: the lead goes back untouched; the gate holds every worker.
    released_status = (
        SyncStatus.RETRYING
        if kind is ResultKind.RELEASED and lead.attempts
        else (SyncStatus.PENDING)
    )
    return Completion(
        lead_id=lead.id,
        lease_token=lead.lease_token,
        status=released_status,
        attempts=lead.attempts,
        attempted_at=None,
        next_attempt_at=resume_at or now,
        keep_error=True,
    )


def _with(base: Completion, **changes: object) -> Completion:
    return replace(base, **changes)  # type: ignore[arg-type]
