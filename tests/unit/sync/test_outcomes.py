"""to_completion: every result kind -> the sync columns the state machine prescribes."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from leadsync.engine.outcomes import to_completion
from leadsync.engine.retry import RetryPolicy
from leadsync.engine.writer import LeadResult, ResultKind
from leadsync.store.queue import LeadSnapshot
from leadsync.store.tables import SyncStatus

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
POLICY = RetryPolicy(base_seconds=2.0, cap_seconds=100.0, max_attempts=5)


def snapshot(*, attempts: int = 0, lead_id: int = 7) -> LeadSnapshot:
    return LeadSnapshot.of(
        id=lead_id,
        email="a@x.com",
        firstname="Ana",
        created_at=NOW - dt.timedelta(minutes=5),
        attempts=attempts,
        lease_token="lease-1",
    )


def complete(result: LeadResult, *, attempts: int = 0, resume_at: dt.datetime | None = None):
    return to_completion(
        result=result,
        lead=snapshot(attempts=attempts),
        policy=POLICY,
        rng=random.Random(3),
        now=NOW,
        resume_at=resume_at,
    )


@pytest.mark.parametrize("attempts", [0, 3])
def test_synced_counts_the_attempt_and_clears_the_error(attempts: int) -> None:
    c = complete(
        LeadResult(7, ResultKind.SYNCED, hubspot_id="101", http_status=200), attempts=attempts
    )
    assert (c.lead_id, c.lease_token) == (7, "lease-1")
    assert c.status is SyncStatus.SYNCED
    assert c.attempts == attempts + 1
    assert c.attempted_at == NOW
    assert c.synced_at == NOW
    assert c.hubspot_id == "101"
    assert c.http_status == 200
    assert c.error is None
    assert c.keep_error is False  # writes NULL over an earlier error
    assert c.next_attempt_at is None


def test_failed_is_final_with_the_error() -> None:
    c = complete(
        LeadResult(7, ResultKind.FAILED, http_status=400, error="HTTP 400: bad email"), attempts=2
    )
    assert c.status is SyncStatus.FAILED
    assert c.attempts == 3
    assert c.attempted_at == NOW
    assert c.http_status == 400
    assert c.error == "HTTP 400: bad email"
    assert c.keep_error is False
    assert c.next_attempt_at is None
    assert c.synced_at is None
    assert c.hubspot_id is None


def test_failed_without_text_still_records_an_error() -> None:
    c = complete(LeadResult(7, ResultKind.FAILED, http_status=400))
    assert c.error


@pytest.mark.parametrize("attempts", [0, 1, 3])
def test_retry_schedules_with_backoff(attempts: int) -> None:
    c = complete(
        LeadResult(7, ResultKind.RETRY, http_status=503, error="HTTP 503"), attempts=attempts
    )
    assert c.status is SyncStatus.RETRYING
    assert c.attempts == attempts + 1
    assert c.attempted_at == NOW
    assert c.http_status == 503
    assert c.error == "HTTP 503"
    assert c.keep_error is False
    ceiling = min(POLICY.cap_seconds, POLICY.base_seconds * 2 ** (attempts + 1))
    assert c.next_attempt_at is not None
    assert NOW <= c.next_attempt_at <= NOW + dt.timedelta(seconds=ceiling)


def test_retry_honours_a_minimum_wait() -> None:
    c = complete(LeadResult(7, ResultKind.RETRY, http_status=423, retry_after_seconds=2.0))
    assert c.next_attempt_at is not None
    assert c.next_attempt_at >= NOW + dt.timedelta(seconds=2)


def test_retry_after_max_attempts_fails() -> None:
    c = complete(
        LeadResult(7, ResultKind.RETRY, http_status=500, error="HTTP 500"),
        attempts=POLICY.max_attempts - 1,
    )
    assert c.status is SyncStatus.FAILED
    assert c.attempts == POLICY.max_attempts
    assert c.error == "HTTP 500"
    assert c.http_status == 500
    assert c.next_attempt_at is None


@pytest.mark.parametrize(
    ("attempts", "status"), [(0, SyncStatus.PENDING), (2, SyncStatus.RETRYING)]
)
def test_rate_limited_does_not_use_an_attempt(attempts: int, status: SyncStatus) -> None:
    c = complete(
        LeadResult(7, ResultKind.RATE_LIMITED, http_status=429, error="429", retry_after_seconds=3),
        attempts=attempts,
    )
    assert c.status is status
    assert c.attempts == attempts
    assert c.http_status == 429
    assert c.next_attempt_at == NOW + dt.timedelta(seconds=3)


def test_rate_limited_waits_for_the_gate_when_it_resumes_later() -> None:
    resume = NOW + dt.timedelta(hours=6)  # e.g. the daily limit's midnight
    c = complete(
        LeadResult(7, ResultKind.RATE_LIMITED, http_status=429, retry_after_seconds=10),
        resume_at=resume,
    )
    assert c.next_attempt_at == resume


def test_rate_limited_waits_for_retry_after_when_it_is_later_than_resume() -> None:
    c = complete(
        LeadResult(7, ResultKind.RATE_LIMITED, http_status=429, retry_after_seconds=60),
        resume_at=NOW + dt.timedelta(seconds=5),
    )
    assert c.next_attempt_at == NOW + dt.timedelta(seconds=60)


@pytest.mark.parametrize("attempts", [0, 4])
def test_auth_paused_goes_back_pending_untouched(attempts: int) -> None:
    resume = NOW + dt.timedelta(seconds=5)
    c = complete(
        LeadResult(7, ResultKind.AUTH_PAUSED, http_status=401, error="HTTP 401"),
        attempts=attempts,
        resume_at=resume,
    )
    assert c.status is SyncStatus.PENDING
    assert c.attempts == attempts
    assert c.attempted_at is None  # last_hubspot_attempt_at keeps its value
    assert c.http_status is None  # so does the last status
    assert c.keep_error is True  # a credential problem is not the lead's error
    assert c.next_attempt_at == resume
    assert c.hubspot_id is None
    assert c.synced_at is None


@pytest.mark.parametrize(
    ("attempts", "status"), [(0, SyncStatus.PENDING), (3, SyncStatus.RETRYING)]
)
def test_released_goes_back_by_prior_attempts(attempts: int, status: SyncStatus) -> None:
    c = complete(LeadResult(7, ResultKind.RELEASED), attempts=attempts)
    assert c.status is status
    assert c.attempts == attempts
    assert c.attempted_at is None
    assert c.keep_error is True
    assert c.next_attempt_at == NOW  # due again at once


def test_released_waits_for_the_gate() -> None:
    resume = NOW + dt.timedelta(seconds=9)
    c = complete(LeadResult(7, ResultKind.RELEASED), resume_at=resume)
    assert c.next_attempt_at == resume


def test_every_kind_is_mapped() -> None:
    for kind in ResultKind:
        c = complete(LeadResult(7, kind, hubspot_id="1", http_status=200))
        assert c.lease_token == "lease-1"
        assert c.status is not SyncStatus.IN_PROGRESS
