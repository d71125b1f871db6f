"""The gate's one-statement reservation on PostgreSQL against its general path, under any
sequence of reservations, pauses, resumes, reported limits and elapsed time.

PostgreSQL takes the one-statement path whenever no pause is set (engine/gate.py, `_RESERVE`);
SQLite always takes the general one. Hypothesis drives both gates with the same operations and
the same clock, and every answer (a slot, a pause, a probe) and the stored state must agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from leadsync.config import RateLimit
from leadsync.engine.gate import Gate, Paused, ProbeDue
from leadsync.hubspot.models import RateLimitInfo
from leadsync.store import migrations
from leadsync.store.db import create_engine, create_sessionmaker, transaction
from leadsync.store.tables import GATE_NAME, HubSpotGate
from tests.helpers.postgres import require_postgres, reset_postgres

pytestmark = pytest.mark.postgres

LIMIT = RateLimit(count=10, window_seconds=10.0)
MADRID = ZoneInfo("Europe/Madrid")
START = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
# PostgreSQL's interval arithmetic and Python's timedelta may round a spacing differently in
# the last microsecond; nothing else may differ.
SLACK = dt.timedelta(microseconds=2)

_RESERVE = st.just(("reserve",))
_ADVANCE = st.tuples(st.just("advance"), st.floats(0, 60).map(lambda s: round(s, 3)))
_REPORTED = st.tuples(st.just("reported_max"), st.one_of(st.none(), st.integers(0, 30)))
# Reservations, time and reported limits most of the time: a pause (each lasts until its
# resume, the window or midnight) takes the one-statement path out of play while it lasts.
OPS = st.lists(
    st.one_of(
        _RESERVE,
        _RESERVE,
        _RESERVE,
        _ADVANCE,
        _ADVANCE,
        _REPORTED,
        _REPORTED,
        st.tuples(st.just("spent"), st.one_of(st.none(), st.integers(1, 30))),
        st.tuples(
            st.just("rate_limit"),
            st.one_of(st.none(), st.floats(0.1, 40).map(lambda s: round(s, 3))),
            st.sampled_from([False] * 9 + [True]),  # the daily limit: until midnight
        ),
        st.sampled_from([("auth",), ("resume",), ("hand_pause",), ("hand_resume",)]),
        st.sampled_from([("resume",), ("hand_resume",), ("write_ok",)]),
    ),
    max_size=30,
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return abs(a - b) <= SLACK
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


async def _answer(gate: Gate, op: tuple[Any, ...]) -> Any:
    name = op[0]
    try:
        if name == "reserve":
            return ("slot", await gate.reserve())
        if name == "rate_limit":
            return await gate.pause_for_rate_limit(
                retry_after_seconds=op[1], interval_seconds=None, daily=op[2], detail="429"
            )
        if name == "auth":
            return await gate.pause_for_auth(detail="401")
        if name == "resume":
            return await gate.resume()
        if name == "hand_pause":
            return await gate.pause_by_hand(detail="by hand")
        if name == "hand_resume":
            return await gate.resume_by_hand()
        if name == "write_ok":
            return await gate.write_succeeded()
        if name == "spent":  # HubSpot says the window is spent: always persisted
            return await gate.observe(RateLimitInfo(max=op[1], remaining=0))
    except Paused as paused:
        return ("paused", paused.until, paused.reason)
    except ProbeDue:
        return ("probe",)
    raise AssertionError(op)


async def _state(gate: Gate) -> tuple[Any, ...]:
    s = await gate.state()
    return (
        s.paused_until,
        s.pause_reason,
        s.auth_failures,
        s.next_slot_at,
        s.reported_max,
        s.reported_remaining,
    )


async def _run(ops: list[tuple[Any, ...]], urls: tuple[str, str]) -> None:
    engines = [create_engine(url, pool_size=2) for url in urls]
    try:
        clock = Clock()
        gates = []
        for engine in engines:
            sessions = create_sessionmaker(engine)
            async with transaction(sessions) as session:
                await session.execute(text("DELETE FROM hubspot_gate"))
                session.add(HubSpotGate(name=GATE_NAME, next_slot_at=START, auth_failures=0))
            gates.append((sessions, Gate(sessions=sessions, limit=LIMIT, zone=MADRID, clock=clock)))
        for step, op in enumerate(ops):
            if op[0] == "advance":
                clock.now += dt.timedelta(seconds=op[1])
                continue
            if op[0] == "reported_max":
                for sessions, _gate in gates:
                    async with transaction(sessions) as session:
                        await session.execute(
                            text("UPDATE hubspot_gate SET reported_max = :n"), {"n": op[1]}
                        )
                continue
            answers = [await _answer(gate, op) for _sessions, gate in gates]
            assert _same(*answers), (
                f"step {step} {op}: PostgreSQL {answers[0]}, SQLite {answers[1]}"
            )
            states = [await _state(gate) for _sessions, gate in gates]
            assert _same(*states), (
                f"after step {step} {op}: PostgreSQL {states[0]}, SQLite {states[1]}"
            )
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    postgres = require_postgres()
    sqlite = f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('gate')) / 'gate.db'}"

    async def prepare() -> None:
        for url in (postgres, sqlite):
            engine = create_engine(url)
            try:
                if engine.dialect.name == "postgresql":
                    await reset_postgres(engine, url)
                else:
                    await migrations.upgrade(engine)
            finally:
                await engine.dispose()

    asyncio.run(prepare())
    return postgres, sqlite


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
# A credential pause, its probe, the resume, then a reservation on the one-statement path:
# that reservation puts the token on trial, and the next write that works ends the trial.
@example(ops=[("auth",), ("advance", 6.0), ("reserve",), ("resume",), ("reserve",), ("write_ok",)])
def test_the_one_statement_reservation_answers_as_the_general_path(
    urls: tuple[str, str], ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_run(ops, urls))
