"""The shared gate on SQLite and PostgreSQL: spacing, header corrections, pauses, probes."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from leadsync.config import RateLimit
from leadsync.engine.gate import (
    AUTH_PROBE_FIRST_SECONDS,
    AUTH_PROBE_MAX_SECONDS,
    JITTER_SECONDS,
    SPACING_MARGIN,
    Gate,
    Paused,
    PauseReason,
    ProbeDue,
    auth_probe_delay,
)
from leadsync.hubspot.models import RateLimitInfo
from leadsync.store.db import transaction
from leadsync.store.tables import HubSpotGate
from tests.helpers.clock import FakeClock

MADRID = ZoneInfo("Europe/Madrid")
LIMIT = RateLimit(count=100, window_seconds=10.0)
SPACING = (10.0 * SPACING_MARGIN + JITTER_SECONDS) / 100


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def seconds(a: dt.datetime, b: dt.datetime) -> float:
    return (b - a).total_seconds()


@pytest.fixture
def make_gate(sessions, clock):
    def make(*, zone: ZoneInfo = MADRID) -> Gate:
        return Gate(sessions=sessions, limit=LIMIT, zone=zone, clock=clock.utc)

    return make


@pytest.fixture
def gate(make_gate) -> Gate:
    return make_gate()


async def gaps(gate: Gate, n: int) -> list[float]:
    slots = [await gate.reserve() for _ in range(n)]
    return [round(seconds(a, b), 5) for a, b in itertools.pairwise(slots)]


# --- reservations -------------------------------------------------------------------


async def test_reserve_returns_evenly_spaced_slots(gate: Gate, clock: FakeClock) -> None:
    slots = [await gate.reserve() for _ in range(5)]
    for i, slot in enumerate(slots):
        assert seconds(clock.now, slot) == pytest.approx(i * SPACING, abs=1e-5)
    assert (await gate.state()).next_slot_at == slots[-1] + dt.timedelta(seconds=SPACING)

    # Idle time is not banked as a burst: after a quiet minute, slots are spaced again.
    clock.advance(60)
    first, second = await gate.reserve(), await gate.reserve()
    assert first == clock.now
    assert seconds(first, second) == pytest.approx(SPACING, abs=1e-5)


async def test_headers_correct_the_budget(gate: Gate, clock: FakeClock) -> None:
    before = await gate.state()
    await gate.observe(RateLimitInfo())  # no headers (search, errors): nothing changes
    assert await gate.state() == before

    # A higher max than configured never loosens the spacing; plenty remaining adds nothing.
    await gate.observe(RateLimitInfo(max=190, remaining=150, daily_remaining=600_000))
    assert await gate.reserve() == clock.now
    assert (await gaps(gate, 2)) == [round(SPACING, 5)]
    state = await gate.state()
    assert (state.reported_max, state.reported_remaining, state.daily_remaining) == (
        190,
        150,
        600_000,
    )

    # HubSpot reports a lower max than configured: the spacing tightens to it.
    clock.advance(60)
    await gate.observe(RateLimitInfo(max=50, remaining=48, interval_milliseconds=10_000))
    tighter = round((10.0 * SPACING_MARGIN + JITTER_SECONDS) / 50, 5)
    assert (await gaps(gate, 3)) == [tighter, tighter]
    assert (await gate.state()).reported_max == 50

    # What our own pacing leaves free (about 5%) is no reason to slow down...
    clock.advance(60)
    await gate.observe(RateLimitInfo(max=50, remaining=3))
    assert seconds(clock.now, await gate.reserve()) == pytest.approx(0, abs=1e-5)
    # ...but a spent window is: the next slot moves back by one extra spacing.
    clock.advance(60)
    await gate.observe(RateLimitInfo(max=50, remaining=0))
    assert seconds(clock.now, await gate.reserve()) == pytest.approx(tighter, abs=1e-5)


async def test_a_missing_gate_row_is_recreated(gate: Gate, sessions, clock: FakeClock) -> None:
    async with transaction(sessions) as session:
        await session.execute(HubSpotGate.__table__.delete())
    state = await gate.state()
    assert not state.paused(clock.now)
    assert state.auth_failures == 0
    assert await gate.reserve() == clock.now
    assert (await gate.state()).next_slot_at == clock.now + dt.timedelta(seconds=SPACING)


async def test_concurrent_reservers_get_distinct_spaced_slots(make_gate, clock: FakeClock) -> None:
    # Separate Gate objects: each reserve() runs in its own session and connection.
    gates = [make_gate() for _ in range(20)]
    slots = await asyncio.gather(*(g.reserve() for g in gates))
    assert len(set(slots)) == len(slots)
    ordered = sorted(slots)
    assert ordered[0] == clock.now
    for a, b in itertools.pairwise(ordered):
        assert seconds(a, b) >= SPACING - 1e-5


# --- rate-limit pauses ----------------------------------------------------------------


async def test_429_pauses_until_retry_after_interval_or_window(
    gate: Gate, clock: FakeClock
) -> None:
    for retry_after, interval, wait in [(7.0, 10.0, 7.0), (None, 4.0, 4.0), (None, None, 10.0)]:
        clock.advance(60)
        until = await gate.pause_for_rate_limit(
            retry_after_seconds=retry_after, interval_seconds=interval, daily=False, detail="429"
        )
        assert until == clock.now + dt.timedelta(seconds=wait)
        state = await gate.state()
        assert state.paused(clock.now)
        assert (state.pause_reason, state.pause_detail) == (PauseReason.RATE_LIMIT, "429")

        clock.advance(wait - 0.5)
        with pytest.raises(Paused) as paused:
            await gate.reserve()
        assert paused.value.until == until
        assert paused.value.reason == PauseReason.RATE_LIMIT

        clock.advance(0.5)
        assert await gate.reserve() >= until  # the first slot after the pause
        state = await gate.state()
        assert not state.paused(clock.now)
        assert state.pause_reason is None


async def test_a_shorter_pause_does_not_cut_a_longer_one(gate: Gate) -> None:
    long = await gate.pause_for_rate_limit(
        retry_after_seconds=60, interval_seconds=None, daily=False, detail="long"
    )
    got = await gate.pause_for_rate_limit(
        retry_after_seconds=2, interval_seconds=None, daily=False, detail="short"
    )
    assert got == long
    assert (await gate.state()).pause_detail == "long"


DAILY_CASES = [
    (MADRID, utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 22, 0)),  # spring forward: 23 h day
    (MADRID, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 23, 0)),  # fall back: 25 h day
    (MADRID, utc(2026, 7, 1, 12, 0), utc(2026, 7, 1, 22, 0)),  # summer time
    (ZoneInfo("UTC"), utc(2026, 5, 5, 13, 14), utc(2026, 5, 6)),
]


@pytest.mark.parametrize(("zone", "now", "midnight"), DAILY_CASES)
async def test_daily_429_pauses_until_midnight_in_the_account_zone(
    make_gate, clock: FakeClock, zone: ZoneInfo, now: dt.datetime, midnight: dt.datetime
) -> None:
    gate = make_gate(zone=zone)
    clock.now = now
    until = await gate.pause_for_rate_limit(
        retry_after_seconds=5, interval_seconds=10, daily=True, detail="daily"
    )
    assert until == midnight
    state = await gate.state()
    assert (state.pause_reason, state.paused_until) == (PauseReason.DAILY_LIMIT, midnight)
    clock.now = midnight - dt.timedelta(seconds=1)
    with pytest.raises(Paused):
        await gate.reserve()
    clock.now = midnight
    assert await gate.reserve() >= midnight


# --- credential pauses and probes -----------------------------------------------------


async def test_auth_pause_lets_exactly_one_caller_probe(make_gate, clock: FakeClock) -> None:
    gate = make_gate()
    until = await gate.pause_for_auth(detail="HTTP 401")
    assert until == clock.now + dt.timedelta(seconds=AUTH_PROBE_FIRST_SECONDS)
    state = await gate.state()
    assert (state.pause_reason, state.auth_failures) == (PauseReason.AUTH, 1)
    with pytest.raises(Paused):
        await gate.reserve()

    clock.advance(AUTH_PROBE_FIRST_SECONDS)
    # The pause ran out: of many concurrent callers (own sessions), exactly one probes.
    gates = [make_gate() for _ in range(8)]
    outcomes = await asyncio.gather(*(g.reserve() for g in gates), return_exceptions=True)
    assert sum(isinstance(o, ProbeDue) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, Paused) for o in outcomes) == 7, outcomes
    # An auth pause never turns into a slot by itself: only resume() ends it.
    assert (await gate.state()).paused(clock.now)


async def test_failed_probes_back_off(gate: Gate, clock: FakeClock) -> None:
    await gate.pause_for_auth(detail="HTTP 401")
    intervals = []
    for _ in range(8):
        state = await gate.state()
        assert state.paused_until is not None
        clock.now = state.paused_until
        with pytest.raises(ProbeDue):
            await gate.reserve()
        next_until = (await gate.state()).paused_until
        assert next_until is not None
        intervals.append(seconds(clock.now, next_until))
        with pytest.raises(Paused):  # right after a probe was handed out, everyone waits
            await gate.reserve()
    assert intervals[:4] == [10.0, 20.0, 40.0, 80.0]
    assert intervals == sorted(intervals)
    assert intervals[-1] == AUTH_PROBE_MAX_SECONDS
    assert (await gate.state()).auth_failures == 9


async def test_auth_pause_holds_until_resume(gate: Gate, clock: FakeClock) -> None:
    until = await gate.pause_for_auth(detail="HTTP 401")
    clock.advance(1)
    # More 401s from requests already in flight keep the first pause and its count.
    assert await gate.pause_for_auth(detail="HTTP 403") == until
    # A 429 meanwhile does not replace the credential pause.
    await gate.pause_for_rate_limit(
        retry_after_seconds=600, interval_seconds=None, daily=False, detail="429"
    )
    state = await gate.state()
    assert (state.pause_reason, state.paused_until, state.auth_failures) == (
        PauseReason.AUTH,
        until,
        1,
    )

    clock.advance(AUTH_PROBE_FIRST_SECONDS)
    with pytest.raises(ProbeDue):
        await gate.reserve()
    await gate.resume()  # the probe (a read) worked
    state = await gate.state()
    assert not state.paused(clock.now)
    # The failures are forgotten only once a write works: a read proves no write scope.
    assert (state.pause_reason, state.paused_until, state.auth_failures) == (None, None, 2)
    assert await gate.reserve() >= clock.now
    await gate.write_succeeded()
    assert (await gate.state()).auth_failures == 0


async def test_lost_write_scope_backs_off_instead_of_flapping(gate: Gate, clock: FakeClock) -> None:
    # The runbook's "app lost the write scope": every probe (a GET) passes, every write gets
    # a 403. Each round must wait longer than the last, up to the maximum.
    waits: list[float] = []
    for _ in range(9):
        until = await gate.pause_for_auth(detail="HTTP 403 MISSING_SCOPES")
        waits.append((until - clock.now).total_seconds())
        clock.now = until
        with pytest.raises(ProbeDue):
            await gate.reserve()
        clock.advance(auth_probe_delay(99))  # past any probe deadline
        await gate.resume()  # the GET probe passed
        await gate.reserve()  # the next write goes out... and gets a 403 again
    assert waits == sorted(waits)
    assert waits[0] == AUTH_PROBE_FIRST_SECONDS
    assert waits[-1] == AUTH_PROBE_MAX_SECONDS
    assert len(set(waits)) >= 4
