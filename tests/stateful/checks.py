"""The sync engine's invariants after a random sequence, as pure functions over snapshots.

Each check returns Violations; a Violation names its invariant in a short tag (the report and
the docs use the same tags) and the emails it concerns, so the report can show their leads,
their contact and their requests.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadsync.engine.contact import DEFAULT_PROPERTY_MAP, lead_properties
from leadsync.hubspot.errors import parse_retry_after

LEAD_FIELDS = ("email", "firstname", "lastname", "phone", "company", "message", "source")
MAPPED_PROPERTIES = tuple(DEFAULT_PROPERTY_MAP.values())
WRITES = frozenset({"batch_upsert", "create", "update"})


@dataclass(frozen=True)
class Violation:
    """One broken invariant: its tag, what happened, and the emails to show in the report."""

    tag: str
    text: str
    emails: tuple[str, ...] = ()
    at: float | None = None  # a wall-clock time to show the request log around

    def __str__(self) -> str:
        return f"[{self.tag}] {self.text}"


@dataclass(frozen=True)
class LeadRow:
    """A lead as the database holds it at the end of an example."""

    id: int
    email: str
    fields: Mapping[str, str | None]
    status: str
    attempts: int
    hubspot_id: str | None
    http_status: int | None
    error: str | None
    lease_expires_at: dt.datetime | None
    next_attempt_at: dt.datetime | None

    def line(self) -> str:
        """One line for the report."""
        shown = " ".join(
            f"{k}={v!r}" for k, v in self.fields.items() if k != "email" and v is not None
        )
        due = "" if self.next_attempt_at is None else f" due={self.next_attempt_at:%H:%M:%S.%f}"
        return (
            f"lead {self.id} {self.status} attempts={self.attempts} http={self.http_status} "
            f"hubspot_id={self.hubspot_id}{due} error={(self.error or '')[:90]!r} | {shown}"
        )


@dataclass
class Call:
    """One request to HubSpot, from the sandbox's request log or the engine's transport."""

    at: float
    endpoint: str
    emails: tuple[str, ...]
    done_at: float | None = None
    status: str = "pending"
    retry_after: str | None = None
    policy: str | None = None
    origin: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, t0: float) -> str:
        """One line for the report, times relative to the example's start."""
        done = "…" if self.done_at is None else f"{self.done_at - t0:+.3f}"
        more = f" Retry-After={self.retry_after!r}" if self.retry_after is not None else ""
        more += f" policy={self.policy}" if self.policy else ""
        return (
            f"{self.at - t0:+.3f}..{done} {self.origin:>7} {self.endpoint:<12} "
            f"{self.status:<10} {list(self.emails)}{more}"
        )


def expected_properties(leads: Iterable[LeadRow]) -> dict[str, str]:
    """The contact the leads should make: oldest to newest, the newest non-empty value wins."""
    merged: dict[str, str] = {}
    for lead in sorted(leads, key=lambda item: item.id):
        merged.update(lead_properties(lead.fields))
    return merged


def _value(properties: Mapping[str, Any], name: str) -> str | None:
    value = properties.get(name)
    return None if value is None or value == "" else str(value)


def check_contacts(
    leads: Sequence[LeadRow],
    contacts: Sequence[Mapping[str, Any]],
    *,
    refused: frozenset[str],
    late: frozenset[str] = frozenset(),
) -> list[Violation]:
    """One contact per email with a SYNCED lead, none for refused ones, newest data wins.

    `late`: emails whose last write at HubSpot was one the engine had given up on (it landed
    after the client's timeout): their properties are whatever that write carried, which no
    engine can prevent, so newest-wins is not checked for them.
    """
    violations: list[Violation] = []
    by_email: dict[str, list[LeadRow]] = defaultdict(list)
    for lead in leads:
        by_email[lead.email].append(lead)
    found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for contact in contacts:
        email = _value(contact.get("properties", {}), "email")
        if email is None:
            violations.append(
                Violation("stray-contact", f"contact {contact.get('id')} has no email")
            )
            continue
        found[email.lower()].append(contact)
    for email in sorted(set(by_email) | set(found)):
        own = by_email.get(email, [])
        synced = [lead for lead in own if lead.status == "SYNCED"]
        there = found.get(email, [])
        if synced:
            if len(there) != 1:
                ids = [c.get("id") for c in there]
                violations.append(
                    Violation(
                        "one-contact",
                        f"{email}: {len(there)} contacts {ids} for {len(synced)} SYNCED leads",
                        (email,),
                    )
                )
                continue
            contact = there[0]
            if email not in late:
                violations += _compare(email, contact, synced)
            wrong = [lead.id for lead in synced if lead.hubspot_id != contact.get("id")]
            if wrong:
                violations.append(
                    Violation(
                        "hubspot-id",
                        f"{email}: SYNCED leads {wrong} lack contact id {contact.get('id')}",
                        (email,),
                    )
                )
        elif not own:
            ids = [c.get("id") for c in there]
            violations.append(
                Violation("stray-contact", f"{email}: contacts {ids}, no lead", (email,))
            )
        elif email in refused and there:
            ids = [c.get("id") for c in there]
            violations.append(
                Violation(
                    "refused-contact", f"{email} is refused by HubSpot yet has {ids}", (email,)
                )
            )
    return violations


def _compare(email: str, contact: Mapping[str, Any], synced: Sequence[LeadRow]) -> list[Violation]:
    expected = expected_properties(synced)
    actual = contact.get("properties", {})
    problems = []
    for name in MAPPED_PROPERTIES:
        want, have = expected.get(name), _value(actual, name)
        if want != have:
            source = next(
                (
                    lead.id
                    for lead in sorted(synced, key=lambda item: -item.id)
                    if name in lead_properties(lead.fields)
                ),
                None,
            )
            problems.append(
                f"{name}={have!r} at HubSpot, newest non-empty {want!r} (lead {source})"
            )
    if not problems:
        return []
    return [Violation("newest-wins", f"{email}: " + "; ".join(problems), (email,))]


def check_attempts(leads: Sequence[LeadRow], *, max_attempts: int) -> list[Violation]:
    """No lead used more attempts than LEADSYNC_MAX_ATTEMPTS."""
    return [
        Violation(
            "attempts",
            f"lead {lead.id} ({lead.email}) has {lead.attempts} attempts > {max_attempts}",
            (lead.email,),
        )
        for lead in leads
        if lead.attempts > max_attempts
    ]


def check_failed(
    failed: Sequence[LeadRow],
    *,
    max_attempts: int,
    refused: frozenset[str],
    permanent: Mapping[str, int],
) -> list[Violation]:
    """A lead is FAILED only when HubSpot refused it for good, or after its last attempt.

    `permanent`: emails that were given permanent per-input errors (how many).
    """
    return [
        Violation(
            "failed-early",
            f"lead {lead.id} ({lead.email}) FAILED after {lead.attempts} < {max_attempts} "
            f"attempts without a permanent error: http={lead.http_status} {lead.error!r}",
            (lead.email,),
        )
        for lead in failed
        if lead.attempts < max_attempts
        and lead.email not in refused
        and not permanent.get(lead.email)
    ]


def check_overlaps(calls: Sequence[Call], *, t0: float) -> list[Violation]:
    """At most one write per email in flight, as the engine saw its own requests."""
    violations: list[Violation] = []
    by_email: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        if call.endpoint in WRITES:
            for email in call.emails:
                by_email[email].append(call)
    for email, writes in sorted(by_email.items()):
        writes.sort(key=lambda call: call.at)
        for index, call in enumerate(writes):
            for earlier in writes[:index]:
                end = math.inf if earlier.done_at is None else earlier.done_at
                if earlier.at <= call.at < end:
                    violations.append(
                        Violation(
                            "overlap",
                            f"{email}: {call.endpoint} by {call.origin} at {call.at - t0:+.3f}s "
                            f"began while {earlier.endpoint} by {earlier.origin} "
                            f"({earlier.at - t0:+.3f}..{end - t0:+.3f}s) was in flight",
                            (email,),
                            call.at,
                        )
                    )
                    break
    return violations


@dataclass(frozen=True)
class Pause:
    """Where the engine must send nothing: after a 429 answered at `start`, until `end`."""

    start: float
    end: float
    cause: Call


def pauses(
    calls: Sequence[Call], *, window: float, cap: float, grace: float, lifts: Sequence[float]
) -> list[Pause]:
    """The pauses the 429s in `calls` impose.

    Rolling 429: p = min(Retry-After, or the configured window when absent/unusable, cap),
    counted only when p > 2 * grace. DAILY 429: until the test lifted the pause ("midnight").
    A lift stands for the account's midnight, hours later: every pause begun before it is
    over by then.
    """
    found: list[Pause] = []
    for call in calls:
        if call.status != "429" or call.endpoint == "search":
            continue
        start = call.done_at if call.done_at is not None else call.at
        midnight = min((t for t in lifts if t >= start), default=math.inf)
        if call.policy == "DAILY":
            found.append(Pause(start, midnight, call))
            continue
        now = dt.datetime.fromtimestamp(start, dt.UTC)
        asked = parse_retry_after(call.retry_after, now=now)
        length = min(asked or window, cap)
        if length > 2 * grace:
            found.append(Pause(start, min(start + length, midnight), call))
    return found


def check_pauses(
    causes: Sequence[Call],
    requests: Sequence[Call],
    *,
    window: float,
    cap: float,
    grace: float,
    lifts: Sequence[float],
    t0: float,
) -> list[Violation]:
    """No request reached HubSpot inside a pause (give or take `grace` at both ends).

    `causes`: the engine's view of its requests (a pause starts when the engine has the 429,
    with the Retry-After header as sent); `requests`: when requests reached HubSpot.
    """
    violations: list[Violation] = []
    for pause in pauses(causes, window=window, cap=cap, grace=grace, lifts=lifts):
        inside = [c for c in requests if pause.start + grace < c.at < pause.end - grace]
        if not inside:
            continue
        first = inside[0]
        end = "the lift" if math.isinf(pause.end) else f"{pause.end - t0:+.3f}s"
        violations.append(
            Violation(
                "pause",
                f"{len(inside)} request(s) during the pause after the 429 "
                f"(policy={pause.cause.policy}, Retry-After={pause.cause.retry_after!r}) "
                f"answered at {pause.start - t0:+.3f}s, pause until {end}; first: "
                f"{first.endpoint} {list(first.emails)} at {first.at - t0:+.3f}s",
                tuple(sorted({e for c in inside for e in c.emails})),
                pause.start,
            )
        )
    return violations


# --- the sandbox's view of writes, matched with the engine's --------------------------

APPLIED = frozenset({"200", "201", "207", "drop"})
_MATCH_SECONDS = 0.5


def sent_by(entry: Call, engine_log: Sequence[Call]) -> Call | None:
    """The engine's call that became this sandbox log entry (same endpoint and emails)."""
    candidates = [
        call
        for call in engine_log
        if call.endpoint == entry.endpoint
        and set(call.emails) == set(entry.emails)
        and call.at - 0.05 <= entry.at <= call.at + _MATCH_SECONDS
    ]
    return min(candidates, key=lambda call: entry.at - call.at, default=None)


def abandoned(entry: Call, engine_log: Sequence[Call]) -> bool:
    """Whether the engine had given up on this request (timeout, crash) before it ended."""
    call = sent_by(entry, engine_log)
    if call is None or call.status.isdigit() or call.done_at is None:
        return False
    return entry.done_at is None or call.done_at < entry.done_at


def late_writes(server_log: Sequence[Call], engine_log: Sequence[Call]) -> frozenset[str]:
    """Emails whose last applied write was one the engine had given up on (it landed late)."""
    last: dict[str, Call] = {}
    for entry in server_log:
        if entry.endpoint in WRITES and entry.status in APPLIED and entry.done_at is not None:
            for email in entry.emails:
                if email not in last or (last[email].done_at or 0.0) <= entry.done_at:
                    last[email] = entry
    return frozenset(email for email, e in last.items() if abandoned(e, engine_log))


def check_server_overlaps(
    server_log: Sequence[Call], engine_log: Sequence[Call], *, reported: int, t0: float
) -> tuple[list[Violation], int]:
    """Writes of one email in progress at once at HubSpot, except behind an abandoned one.

    A write the engine gave up on (its timeout ran out, its worker crashed) may still be in
    progress at HubSpot when the engine retries; the engine cannot know, so such overlaps are
    excused (and counted). `reported`: the sandbox's own write_overlaps count, for the text.
    Returns the violations and how many overlaps were excused.
    """
    violations: list[Violation] = []
    excused = 0
    by_email: dict[str, list[Call]] = defaultdict(list)
    for entry in server_log:
        if entry.endpoint in WRITES:
            for email in entry.emails:
                by_email[email].append(entry)
    for email, writes in sorted(by_email.items()):
        writes.sort(key=lambda entry: entry.at)
        for index, entry in enumerate(writes):
            for earlier in writes[:index]:
                end = math.inf if earlier.done_at is None else earlier.done_at
                if not earlier.at <= entry.at < end:
                    continue
                if abandoned(earlier, engine_log):
                    excused += 1
                    continue
                violations.append(
                    Violation(
                        "write-overlaps",
                        f"{email}: {entry.endpoint} reached HubSpot at {entry.at - t0:+.3f}s "
                        f"while {earlier.endpoint} ({earlier.at - t0:+.3f}..{end - t0:+.3f}s, "
                        f"{earlier.status}) was in progress (sandbox write_overlaps={reported})",
                        (email,),
                        entry.at,
                    )
                )
                break
    return violations, excused


@dataclass(frozen=True)
class RequestBudget:
    """The counts the request bound is made of (see `bound`)."""

    leads: int  # L: leads posted
    requeued: int  # Q: FAILED leads put back (resync rule and settle)
    faults: int  # F: injected answers and per-input errors (their `times`, summed)
    crashes: int  # C: workers abandoned
    refused_sends: int  # R: sends of refused leads (posted + requeued)
    emails: int  # E: distinct emails in the pool (at most E inputs per request)
    inflight: int  # M: LEADSYNC_MAX_INFLIGHT_BATCHES
    calls_per_input: int  # m: 1 in batch mode; 3 in single mode (create, 409, PATCH/search)

    def bound(self) -> int:
        """m(L + Q) + m*E*(F + C*M) + 2*ceil(log2 E)*R + 5.

        Without faults each lead is sent at most once (m calls in single mode) and every
        FAILED lead requeued once more. A fault makes the inputs of one request (at most E,
        one per email) go again, in the worst case one request each; a crash does the same
        for each of the M batches the worker had in flight. A whole-batch 400 for a refused
        email costs its isolation: at most 2*ceil(log2 E) extra requests by halving. 5
        requests of slack for whatever arrives while the test stops injecting.
        """
        m, e = self.calls_per_input, self.emails
        halving = 2 * math.ceil(math.log2(e))
        return (
            m * (self.leads + self.requeued)
            + m * e * (self.faults + self.crashes * self.inflight)
            + halving * self.refused_sends
            + 5
        )


def check_request_bound(calls: Sequence[Call], budget: RequestBudget) -> list[Violation]:
    """The engine's requests stay within the bound of the minimum the workload needs."""
    bound = budget.bound()
    if len(calls) <= bound:
        return []
    return [
        Violation(
            "request-bound",
            f"{len(calls)} requests > bound {bound} for {budget} "
            "(m(L+Q) + m*E*(F+C*M) + 2*ceil(log2 E)*R + 5)",
        )
    ]
