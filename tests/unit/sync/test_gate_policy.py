"""The gate's pure policy: local midnight across DST, probe backoff, request spacing."""

from __future__ import annotations

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
    auth_probe_delay,
    next_midnight,
)

MADRID = ZoneInfo("Europe/Madrid")
SPACING = (10.0 * SPACING_MARGIN + JITTER_SECONDS) / 100


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def gate() -> Gate:
    # spacing() needs no database.
    return Gate(sessions=None, limit=RateLimit(100, 10.0), zone=MADRID)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        # Winter (CET, UTC+1): 23:30 local -> 00:00 local = 23:00 UTC.
        (utc(2026, 1, 15, 22, 30), utc(2026, 1, 15, 23, 0)),
        # Just after local midnight: the *next* one, almost a day away.
        (utc(2026, 1, 15, 23, 0, 1), utc(2026, 1, 16, 23, 0)),
        # Spring forward (29 March 2026 02:00 -> 03:00): a 23-hour day, midnight is 22:00 UTC.
        (utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 22, 0)),
        (utc(2026, 3, 28, 22, 30), utc(2026, 3, 28, 23, 0)),
        # Fall back (25 October 2026 03:00 -> 02:00): a 25-hour day, midnight is 23:00 UTC.
        (utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 23, 0)),
        (utc(2026, 10, 24, 21, 59), utc(2026, 10, 24, 22, 0)),
    ],
)
def test_next_midnight_in_madrid_across_dst(now: dt.datetime, midnight: dt.datetime) -> None:
    got = next_midnight(now, MADRID)
    assert got == midnight
    assert got > now
    local = got.astimezone(MADRID)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)


def test_auth_probe_delays_grow_and_cap() -> None:
    delays = [auth_probe_delay(n) for n in range(12)]
    assert delays[0] == AUTH_PROBE_FIRST_SECONDS
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[1] == 2 * delays[0]
    assert delays[-1] == AUTH_PROBE_MAX_SECONDS
    assert auth_probe_delay(10**6) == AUTH_PROBE_MAX_SECONDS


def test_spacing_from_config_and_reported_max(gate: Gate) -> None:
    assert gate.spacing() == pytest.approx(SPACING)
    assert gate.spacing(50) == pytest.approx((10.0 * SPACING_MARGIN + JITTER_SECONDS) / 50)
    assert gate.spacing(250) == pytest.approx(SPACING)  # never looser than configured
    assert gate.spacing(0) == pytest.approx(SPACING)
