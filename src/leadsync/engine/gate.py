"""One HubSpot request budget and one pause switch for every worker, kept in the database.

The budget is a GCRA-style schedule: `next_slot_at` is the earliest moment the next request
may leave, and each reservation moves it on by `window / limit`. Requests from all workers
therefore leave evenly spaced, so no rolling window of HubSpot's ever sees more than the
limit, without a per-request log table. Pauses (429, daily limit, bad credentials) are the
same row: every worker sees them before its next request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from leadsync.config import RateLimit
from leadsync.hubspot.models import RateLimitInfo
from leadsync.logging import get_logger
from leadsync.store import pgdirect
from leadsync.store.db import UTCDateTime, transaction, utcnow
from leadsync.store.tables import GATE_NAME, HubSpotGate

log = get_logger(__name__)

# Slack under the limit: 3% of the window plus a fixed 0.25 s absorb the delays (a claim,
# a busy event loop) that can bunch requests which left their slots late then on time.
SPACING_MARGIN = 1.03
JITTER_SECONDS = 0.25
# Below this share of HubSpot's reported remaining budget, leave an extra slot free:
# something else (another integration on the same app) is spending it too. Our own pacing
# leaves about 5% of the window unused, so a higher threshold would brake on ourselves
# (at 10% it cost the drain benchmark 5% of its throughput).
LOW_REMAINING_SHARE = 0.02
OBSERVE_EVERY_SECONDS = 1.0
AUTH_PROBE_FIRST_SECONDS = 5.0
AUTH_PROBE_MAX_SECONDS = 300.0
# The longest account-wide pause a 429's Retry-After can ask for (LEADSYNC_PAUSE_CAP_SECONDS
# overrides it). A DAILY 429 is not capped: it waits for the account's midnight.
DEFAULT_PAUSE_CAP_SECONDS = 300.0


class PauseReason(StrEnum):
    """Why every worker has stopped calling HubSpot."""

    RATE_LIMIT = "rate_limit"
    DAILY_LIMIT = "daily_limit"
    AUTH = "auth"
    MANUAL = "manual"  # an operator paused the sync (maintenance); lasts until resumed


# Pauses that last until lifted, whatever `paused_until` says: a credential pause (lifted by a
# passing probe or by hand) and a pause by hand.
HELD_PAUSES = frozenset({PauseReason.AUTH, PauseReason.MANUAL})
# How often a worker held by a pause by hand looks again (it also polls every interval).
MANUAL_RECHECK_SECONDS = 5.0


class Paused(Exception):
    """HubSpot must not be called before `until`."""

    def __init__(self, *, until: dt.datetime, reason: str) -> None:
        super().__init__(f"HubSpot sync paused ({reason}) until {until.isoformat()}")
        self.until = until
        self.reason = reason


class ProbeDue(Exception):
    """The credential pause has run out: this caller (only) should probe with one cheap call."""


@dataclass(frozen=True, slots=True)
class GateState:
    """A snapshot of the gate for status pages and metrics."""

    paused_until: dt.datetime | None
    pause_reason: str | None
    pause_detail: str | None
    auth_failures: int
    next_slot_at: dt.datetime
    reported_max: int | None
    reported_remaining: int | None
    daily_remaining: int | None

    def paused(self, now: dt.datetime) -> bool:
        """Return whether workers must hold off at `now`."""
        return self.pause_reason in HELD_PAUSES or (
            self.paused_until is not None and self.paused_until > now
        )


# The common reservation on PostgreSQL (no pause, the row there), as one statement through
# asyncpg: the row locked, the slot taken and the schedule moved on, with what `reserve`
# would compute (`spacing()`: span / min(count, reported max)). Anything else (a pause,
# even one run out; a missing row) answers no row and takes the general path below.
_RESERVE = pgdirect.Direct.of(
    text(
        """
        UPDATE hubspot_gate AS g
        SET next_slot_at = cur.slot + make_interval(
                secs => :span / LEAST(:count, COALESCE(NULLIF(g.reported_max, 0), :count))
            ),
            updated_at = :now
        FROM (
            SELECT name, GREATEST(next_slot_at, :now) AS slot
            FROM hubspot_gate
            WHERE name = :name
              AND pause_reason IS NULL
              AND (paused_until IS NULL OR paused_until <= :now)
            FOR UPDATE
        ) AS cur
        WHERE g.name = cur.name
        RETURNING cur.slot, g.auth_failures
        """
    ).bindparams(
        bindparam("span", type_=Float()),
        bindparam("count", type_=Integer()),
        bindparam("now", type_=UTCDateTime()),
        bindparam("name", value=GATE_NAME),
    )
)
_PAUSE_STATE = select(HubSpotGate.paused_until, HubSpotGate.pause_reason).where(
    HubSpotGate.name == GATE_NAME
)


def next_midnight(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return the next local midnight of the account's time zone, in UTC."""
    tomorrow = now.astimezone(zone).date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def auth_probe_delay(failures: int) -> float:
    """Return how long to wait before probing again after `failures` failed probes."""
    return min(AUTH_PROBE_MAX_SECONDS, AUTH_PROBE_FIRST_SECONDS * 2.0 ** min(failures, 16))


class Gate:
    """The shared budget and pause of one HubSpot account, stored in `hubspot_gate`."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        limit: RateLimit,
        zone: ZoneInfo,
        clock: Callable[[], dt.datetime] = utcnow,
        pause_cap_seconds: float = DEFAULT_PAUSE_CAP_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._postgres = pgdirect.postgres_engine(sessions)
        self._limit = limit
        self._zone = zone
        self._clock = clock
        self._pause_cap = pause_cap_seconds
        self._last_max: int | None = None
        self._next_observe = 0.0
        # Set while credentials are on trial: a probe (a read) passed after a 401/403, but no
        # write has worked since. The first write that works ends the trial.
        self._trial = False

    async def _row(self, session: AsyncSession) -> HubSpotGate:
        row = (
            await session.execute(
                select(HubSpotGate).where(HubSpotGate.name == GATE_NAME).with_for_update()
            )
        ).scalar_one_or_none()
        if row is None:  # the migration creates it; a wiped table must not stop the sync
            row = HubSpotGate(name=GATE_NAME, next_slot_at=self._clock(), auth_failures=0)
            session.add(row)
        return row

    def spacing(self, reported_max: int | None = None) -> float:
        """Return the seconds between two requests under the configured (or reported) limit."""
        count = self._limit.count
        if reported_max:  # HubSpot knows the account's real tier better than our setting
            count = min(count, reported_max)
        return (self._limit.window_seconds * SPACING_MARGIN + JITTER_SECONDS) / count

    async def reserve(self) -> dt.datetime:
        """Reserve the next request slot and return when it starts; raise Paused or ProbeDue."""
        if self._postgres is not None:
            now = self._clock()
            values = {
                "span": self._limit.window_seconds * SPACING_MARGIN + JITTER_SECONDS,
                "count": self._limit.count,
                "now": now,
            }
            async with pgdirect.autocommit(self._postgres) as driver:
                row = await driver.fetchrow(_RESERVE.sql, *_RESERVE.args(values))
            if row is not None:
                self._trial = (row[1] or 0) > 0
                slot: dt.datetime = row[0]
                return slot
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            now = self._clock()
            if row.pause_reason == PauseReason.MANUAL:
                recheck = now + dt.timedelta(seconds=MANUAL_RECHECK_SECONDS)
                raise Paused(until=recheck, reason=PauseReason.MANUAL)
            if row.paused_until is not None and row.paused_until > now:
                raise Paused(until=row.paused_until, reason=row.pause_reason or "unknown")
            probe = row.pause_reason == PauseReason.AUTH
            if probe:
                # Only the caller that moves the deadline on probes; the others wait for it.
                row.paused_until = now + dt.timedelta(seconds=auth_probe_delay(row.auth_failures))
                row.auth_failures += 1
            else:
                if row.pause_reason is not None:
                    row.pause_reason = row.pause_detail = None
                    row.paused_until = None
                self._trial = (row.auth_failures or 0) > 0
                slot = max(row.next_slot_at, now)
                row.next_slot_at = slot + dt.timedelta(seconds=self.spacing(row.reported_max))
        # Raised after the commit: raising inside the transaction would roll the new deadline
        # back, and every caller (every worker loop, at once and forever) would probe.
        if probe:
            raise ProbeDue
        return slot

    async def acquire(self) -> None:
        """Wait for this worker's turn to send one request (raises Paused or ProbeDue)."""
        slot = await self.reserve()
        wait = (slot - self._clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)  # pacing to the shared schedule, not a race workaround
        # The slot was booked before the wait: a pause that began meanwhile wins over it.
        await self.check()

    async def check(self, conn: AsyncConnection | None = None) -> None:
        """Raise Paused if any worker has paused the sync (a read; takes no lock).

        `conn`: read on it (inside the caller's transaction) instead of a connection of its own.
        """
        if conn is not None:
            row = (await conn.execute(_PAUSE_STATE)).first()
        else:
            async with self._sessions() as session:
                row = (await session.execute(_PAUSE_STATE)).first()
        if row is None:
            return
        paused_until, reason = row
        now = self._clock()
        if reason in HELD_PAUSES or (paused_until is not None and paused_until > now):
            raise Paused(until=paused_until or now, reason=reason or "unknown")

    async def write_succeeded(self) -> None:
        """Note that a HubSpot write worked: a credential trial, if one is on, has passed."""
        if not self._trial:
            return
        self._trial = False
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            if row.pause_reason != PauseReason.AUTH:
                row.auth_failures = 0

    async def observe(self, info: RateLimitInfo) -> None:
        """Correct the budget from HubSpot's rate-limit headers of a response."""
        if info == RateLimitInfo():
            return
        low = (
            info.remaining is not None
            and info.max is not None
            and info.remaining < info.max * LOW_REMAINING_SHARE
        )
        now_mono = time.monotonic()
        # The headers arrive with every response; persisting them once a second is enough
        # for status and metrics, unless they call for action (a new max, a low remaining).
        if not low and info.max == self._last_max and now_mono < self._next_observe:
            return
        self._last_max = info.max
        self._next_observe = now_mono + OBSERVE_EVERY_SECONDS
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            row.reported_max = info.max if info.max is not None else row.reported_max
            row.reported_remaining = info.remaining
            row.reported_interval_ms = info.interval_milliseconds
            if info.daily_remaining is not None:
                row.daily_remaining = info.daily_remaining
            if low:
                spacing = dt.timedelta(seconds=self.spacing(row.reported_max))
                row.next_slot_at = max(row.next_slot_at, self._clock()) + spacing

    async def pause_for_rate_limit(
        self,
        *,
        retry_after_seconds: float | None,
        interval_seconds: float | None,
        daily: bool,
        detail: str,
    ) -> dt.datetime:
        """Pause every worker after a 429: until Retry-After, the window's end, or midnight."""
        now = self._clock()
        if daily:
            until, reason = next_midnight(now, self._zone), PauseReason.DAILY_LIMIT
        else:
            wait = retry_after_seconds or interval_seconds or self._limit.window_seconds
            if wait > self._pause_cap:
                log.warning("sync.pause.capped", asked_seconds=wait, capped_seconds=self._pause_cap)
                wait = self._pause_cap
            until, reason = now + dt.timedelta(seconds=wait), PauseReason.RATE_LIMIT
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            if row.pause_reason in HELD_PAUSES:
                return row.paused_until or until
            if row.paused_until is None or row.paused_until < until:
                row.paused_until, row.pause_reason, row.pause_detail = until, reason, detail
            row.next_slot_at = max(row.next_slot_at, until)
            return row.paused_until

    async def pause_for_auth(self, *, detail: str) -> dt.datetime:
        """Pause every worker after a 401/403 until a probe shows the token works again.

        The wait grows with every failure since the last write that worked, so a token that
        can read but not write (a lost write scope: the probe passes, the next write gets a
        403) backs off to AUTH_PROBE_MAX_SECONDS instead of flapping every 5 s.
        """
        self._trial = False
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            now = self._clock()
            if row.pause_reason == PauseReason.MANUAL:  # a pause by hand outranks it
                return now
            if row.pause_reason != PauseReason.AUTH:
                row.pause_reason, row.pause_detail = PauseReason.AUTH, detail
                row.paused_until = now + dt.timedelta(seconds=auth_probe_delay(row.auth_failures))
                row.auth_failures = (row.auth_failures or 0) + 1
            return row.paused_until or now

    async def resume(self) -> None:
        """Lift a credential pause after a probe passed; a write must still prove the token.

        `auth_failures` stays until a write works (write_succeeded), so a failing write
        resumes the backoff where it stopped.
        """
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            if row.pause_reason == PauseReason.AUTH:  # not a pause by hand begun meanwhile
                row.paused_until = row.pause_reason = row.pause_detail = None

    async def pause_by_hand(self, *, detail: str) -> str | None:
        """Hold every worker until `resume_by_hand` (maintenance); return the pause it replaced.

        It outranks every other pause: a 429 or 401 meanwhile does not replace it, and after
        the resume HubSpot is asked again (a bad token pauses again, with its backoff kept).
        """
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            before = row.pause_reason if self._is_paused(row) else None
            row.pause_reason, row.pause_detail, row.paused_until = PauseReason.MANUAL, detail, None
            return before

    async def resume_by_hand(self) -> str | None:
        """Lift a pause by hand or a credential pause; return the reason lifted, else None.

        A HubSpot pause (429, daily limit) is HubSpot's order and is not lifted here. After a
        credential pause the token stays on trial (`auth_failures` kept until a write works).
        """
        async with transaction(self._sessions) as session:
            row = await self._row(session)
            reason = row.pause_reason
            if reason not in HELD_PAUSES:
                return None
            row.paused_until = row.pause_reason = row.pause_detail = None
            return reason

    def _is_paused(self, row: HubSpotGate) -> bool:
        return row.pause_reason in HELD_PAUSES or (
            row.paused_until is not None and row.paused_until > self._clock()
        )

    async def state(self) -> GateState:
        """Return the gate's current state."""
        async with self._sessions() as session:
            row = await session.get(HubSpotGate, GATE_NAME)
        if row is None:
            return GateState(None, None, None, 0, self._clock(), None, None, None)
        return GateState(
            paused_until=row.paused_until,
            pause_reason=row.pause_reason,
            pause_detail=row.pause_detail,
            auth_failures=row.auth_failures,
            next_slot_at=row.next_slot_at,
            reported_max=row.reported_max,
            reported_remaining=row.reported_remaining,
            daily_remaining=row.daily_remaining,
        )
