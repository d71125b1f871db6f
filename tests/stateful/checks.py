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
    # Privacy columns: the keyed hash, when the row was scrubbed, its history rows.
    email_hash: str | None = None
    scrubbed: bool = False
    history: int = 0  # lead_sync_attempts rows, `fenced` ones excepted
    fenced_history: int = 0  # lead_sync_attempts rows of outcome `fenced`

    def line(self) -> str:
        """One line for the report."""
        shown = " ".join(
            f"{k}={v!r}" for k, v in self.fields.items() if k != "email" and v is not None
        )
        due = "" if self.next_attempt_at is None else f" due={self.next_attempt_at:%H:%M:%S.%f}"
        scrub = " scrubbed" if self.scrubbed else ""
        return (
            f"lead {self.id} {self.status}{scrub} attempts={self.attempts} "
            f"http={self.http_status} hubspot_id={self.hubspot_id}{due} history={self.history} "
            f"error={(self.error or '')[:90]!r} | {shown}"
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


def late_writes(
    server_log: Sequence[Call],
    engine_log: Sequence[Call],
    since: Mapping[str, float] | None = None,
) -> frozenset[str]:
    """Emails whose last applied write was one the engine had given up on (it landed late).

    `since`: for an erased email, when its last erasure completed: only the writes begun
    after it (those of its new consent) count, so that a late write of erased data does not
    excuse newest-wins for the leads posted since.
    """
    last: dict[str, Call] = {}
    for entry in server_log:
        if entry.endpoint in WRITES and entry.status in APPLIED and entry.done_at is not None:
            for email in entry.emails:
                if since is not None and entry.at < since.get(email, -math.inf):
                    continue
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
    erasures: int = 0  # G: erasure requests (each one GDPR delete)

    def bound(self) -> int:
        """m(L + Q) + m*E*(F + C*M) + 2*ceil(log2 E)*R + G + 5.

        Without faults each lead is sent at most once (m calls in single mode) and every
        FAILED lead requeued once more. A fault makes the inputs of one request (at most E,
        one per email) go again, in the worst case one request each; a crash does the same
        for each of the M batches the worker had in flight. A whole-batch 400 for a refused
        email costs its isolation: at most 2*ceil(log2 E) extra requests by halving. 5
        requests of slack for whatever arrives while the test stops injecting. Each erasure
        request costs one GDPR delete (a fault or a crash that makes it go again is counted
        above).
        """
        m, e = self.calls_per_input, self.emails
        halving = 2 * math.ceil(math.log2(e))
        return (
            m * (self.leads + self.requeued)
            + m * e * (self.faults + self.crashes * self.inflight)
            + halving * self.refused_sends
            + self.erasures
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
            "(m(L+Q) + m*E*(F+C*M) + 2*ceil(log2 E)*R + G + 5)",
        )
    ]


# --- erasures (docs/privacy.md) ------------------------------------------------------------

# The personal fields an erasure's scrub must empty.
SCRUBBED_FIELDS = ("email", "firstname", "lastname", "phone", "company", "message")


@dataclass(frozen=True)
class ErasureAsked:
    """One erasure request the test made, as it saw it: its email, the erasure's id, and when
    the request was made (`started`, wall clock) and returned (`returned` wall clock,
    `mono` monotonic)."""

    email: str
    erasure_id: int
    created: bool
    started: float
    returned: float
    mono: float


@dataclass(frozen=True)
class ErasureRow:
    """An erasure as the database holds it at the end of an example."""

    id: int
    status: str
    email: str | None
    email_hash: str
    completed_at: float | None  # wall clock
    attempts: int
    error: str | None

    def line(self) -> str:
        """One line for the report."""
        return (
            f"erasure {self.id} {self.status} attempts={self.attempts} "
            f"completed_at={self.completed_at} email={self.email!r} "
            f"error={(self.error or '')[:90]!r}"
        )


def erased_since(asked: Sequence[ErasureAsked], rows: Mapping[int, ErasureRow]) -> dict[str, float]:
    """Each erased email's last erasure's completion (infinity while it is not completed)."""
    return {
        email: math.inf
        if (row := rows.get(request.erasure_id)) is None or row.completed_at is None
        else row.completed_at
        for email, request in last_erasures(asked).items()
    }


def last_erasures(asked: Sequence[ErasureAsked]) -> dict[str, ErasureAsked]:
    """Each erased email's last request."""
    last: dict[str, ErasureAsked] = {}
    for request in asked:
        if request.email not in last or last[request.email].mono <= request.mono:
            last[request.email] = request
    return last


def split_erased(
    leads: Sequence[LeadRow], posted: Mapping[int, float], asked: Sequence[ErasureAsked]
) -> tuple[list[LeadRow], list[LeadRow]]:
    """(erased, live): a lead is erased when it was posted (`posted`: lead id -> monotonic
    time its POST returned) before the last erasure request of its email returned.

    Live leads are the ones every sync invariant applies to; erased ones are checked by the
    erasure invariants only. An email never erased has only live leads.
    """
    last = last_erasures(asked)
    erased: list[LeadRow] = []
    live: list[LeadRow] = []
    for lead in leads:
        cut = last.get(lead.email)
        when = posted.get(lead.id, -math.inf)
        (erased if cut is not None and when < cut.mono else live).append(lead)
    return erased, live


def check_erasures_complete(
    asked: Sequence[ErasureAsked],
    rows: Mapping[int, ErasureRow],
    deletions: Sequence[Mapping[str, Any]],
) -> list[Violation]:
    """Every requested erasure is COMPLETED, and HubSpot applied a GDPR delete of its email
    after the erasure was first asked for (a COMPLETED erasure HubSpot never saw would leave
    the contact in place)."""
    violations: list[Violation] = []
    first: dict[int, ErasureAsked] = {}
    for request in asked:
        first.setdefault(request.erasure_id, request)
    for erasure_id, request in first.items():
        row = rows.get(erasure_id)
        if row is None or row.status != "COMPLETED":
            violations.append(
                Violation(
                    "erasure-complete",
                    f"{request.email}: erasure {erasure_id} is "
                    f"{'missing' if row is None else row.status}, not COMPLETED, after settle"
                    + ("" if row is None else f" ({row.line()})"),
                    (request.email,),
                )
            )
            continue
        applied = [
            d
            for d in deletions
            if str(d.get("objectId", "")).strip().lower() == request.email
            and float(d.get("at") or 0.0) >= request.started
        ]
        if not applied:
            violations.append(
                Violation(
                    "erasure-complete",
                    f"{request.email}: erasure {erasure_id} COMPLETED, but HubSpot applied no "
                    "GDPR delete of the email after it was asked for",
                    (request.email,),
                )
            )
    return violations


def check_erased_rows(
    erased: Sequence[LeadRow],
    asked: Sequence[ErasureAsked],
    rows: Mapping[int, ErasureRow],
    hashes: Mapping[str, str],
    *,
    excuse_fenced: bool = False,
) -> list[Violation]:
    """Every lead posted before its email's last erasure returned is ERASED and, once that
    erasure completed, scrubbed: personal fields NULL, the keyed hash kept, no history rows.

    `hashes`: each email's expected keyed hash. `excuse_fenced`: do not count history rows of
    outcome `fenced`: a known engine gap, queue.complete() appends one for an outcome fenced
    out by the erasure, also when it commits after the erasure's scrub deleted the history
    (`fenced_left` counts those leads).
    """
    violations: list[Violation] = []
    last = last_erasures(asked)
    for lead in erased:
        request = last[lead.email]
        problems = []
        if lead.status != "ERASED":
            problems.append(f"status {lead.status}")
        row = rows.get(request.erasure_id)
        if row is not None and row.status == "COMPLETED":
            kept = [name for name in SCRUBBED_FIELDS if lead.fields.get(name) is not None]
            if kept:
                problems.append(f"fields {kept} not NULL")
            if lead.email_hash != hashes.get(lead.email):
                problems.append(f"email_hash {lead.email_hash!r} is not the email's keyed hash")
            kept_rows = lead.history + (0 if excuse_fenced else lead.fenced_history)
            if kept_rows:
                problems.append(
                    f"{kept_rows} lead_sync_attempts rows kept ({lead.fenced_history} fenced)"
                )
        if problems:
            violations.append(
                Violation(
                    "erased-rows",
                    f"lead {lead.id} ({lead.email}) posted before erasure {request.erasure_id} "
                    f"returned: " + "; ".join(problems),
                    (lead.email,),
                )
            )
    return violations


def check_no_write_after_erasure(
    log: Sequence[Call],
    asked: Sequence[ErasureAsked],
    rows: Mapping[int, ErasureRow],
    *,
    t0: float,
) -> list[Violation]:
    """No write carrying an email began at HubSpot after an erasure request of it returned
    and before that erasure completed (new leads of the email are held until then)."""
    violations: list[Violation] = []
    for request in asked:
        row = rows.get(request.erasure_id)
        end = math.inf if row is None or row.completed_at is None else row.completed_at
        inside = [
            call
            for call in log
            if call.endpoint in WRITES
            and request.email in call.emails
            and request.returned < call.at < end
        ]
        if inside:
            first = inside[0]
            until = "its end" if math.isinf(end) else f"{end - t0:+.3f}s"
            violations.append(
                Violation(
                    "no-write-after-erasure",
                    f"{request.email}: {len(inside)} write(s) began after erasure "
                    f"{request.erasure_id} was asked (returned {request.returned - t0:+.3f}s) "
                    f"and before it completed ({until}); first: {first.endpoint} "
                    f"{first.status} at {first.at - t0:+.3f}s",
                    (request.email,),
                    first.at,
                )
            )
    return violations


def check_erased_contacts(
    live: Sequence[LeadRow],
    contacts: Sequence[Mapping[str, Any]],
    asked: Sequence[ErasureAsked],
    *,
    refused: frozenset[str],
    excused: frozenset[str] = frozenset(),
) -> list[Violation]:
    """After settle, an erased email has no contact, unless a lead of it was posted after its
    last erasure request (a new consent): then one contact, holding only values of those
    leads (which of them wins is newest-wins's business).

    `excused`: emails whose contact a late write re-created (`recreated_late`), not checked.
    """
    violations: list[Violation] = []
    found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for contact in contacts:
        email = _value(contact.get("properties", {}), "email")
        if email is not None:
            found[email.lower()].append(contact)
    for email, request in sorted(last_erasures(asked).items()):
        if email in excused:
            continue
        there = found.get(email, [])
        consent = [lead for lead in live if lead.email == email]
        ids = [c.get("id") for c in there]
        if not consent or email in refused:
            if there:
                violations.append(
                    Violation(
                        "erased-contact",
                        f"{email}: contacts {ids} after erasure {request.erasure_id}, "
                        "and no lead posted since",
                        (email,),
                    )
                )
            continue
        if len(there) != 1:
            violations.append(
                Violation(
                    "erased-contact",
                    f"{email}: {len(there)} contacts {ids} for the {len(consent)} lead(s) "
                    f"posted after erasure {request.erasure_id}",
                    (email,),
                )
            )
            continue
        allowed: dict[str, set[str]] = defaultdict(set)
        for lead in consent:
            for name, value in lead_properties(lead.fields).items():
                allowed[name].add(value)
        props = there[0].get("properties", {})
        leaked = {
            name: have
            for name in MAPPED_PROPERTIES
            if (have := _value(props, name)) is not None
            and have not in allowed.get(name, set())
            and not (name == "email" and have.lower() == email)
        }
        if leaked:
            violations.append(
                Violation(
                    "erased-contact",
                    f"{email}: contact {there[0].get('id')} holds {leaked}, values of no lead "
                    f"posted after erasure {request.erasure_id}",
                    (email,),
                )
            )
    return violations


def recreated_late(
    server_log: Sequence[Call],
    engine_log: Sequence[Call],
    asked: Sequence[ErasureAsked],
    deletions: Sequence[Mapping[str, Any]],
) -> dict[str, Call]:
    """Erased emails whose contact a late write re-created, with that write.

    A late write here: applied at HubSpot (200/201/207/drop), begun before the email's last
    erasure request returned, given up on by the engine (its client timed out or its worker
    died), and answered after HubSpot's last GDPR delete of the email. The send fence waits
    for the engine's writes in flight only until the client gives up; the erasure's
    confirming second delete is what removes such a write, so one found here is reported
    (for the summary) and fails erased-contact.
    """
    found: dict[str, Call] = {}
    for email, request in last_erasures(asked).items():
        deleted = [
            float(d.get("at") or 0.0)
            for d in deletions
            if str(d.get("objectId", "")).strip().lower() == email
        ]
        if not deleted:
            continue
        for entry in server_log:
            if (
                entry.endpoint in WRITES
                and email in entry.emails
                and entry.status in APPLIED
                and entry.at < request.returned
                and entry.done_at is not None
                and entry.done_at > max(deleted)
                and abandoned(entry, engine_log)
            ):
                found[email] = entry
    return found
