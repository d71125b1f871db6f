"""What the state machine draws: leads of a small pool of people, faults, per-example plans.

Every value here is plain data with a short repr, because Hypothesis prints the failing
sequence of steps with these reprs: the sequence must read as a reproduction recipe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, Literal

from hypothesis import strategies as st

from tests.helpers.hubspot import error_body, rate_limit_body

# The people who fill in the form. Few of them, so that the same person returns often; the
# last one HubSpot refuses (the sandbox's reject_emails matches it), as it refuses an email
# it considers invalid although our API accepted it.
POOL = (
    "ana@example.com",
    "bo.li@example.com",
    "carla+news@example.org",
    "dev@example.net",
    "eve@example.com",
    "nobody@refused.example.com",
)
REFUSED_PATTERN = r"@refused\.example\.com$"
REFUSED = frozenset(email for email in POOL if email.endswith("@refused.example.com"))

Casing = Literal["lower", "upper", "title", "mixed"]
# First value of each list is what Hypothesis shrinks towards: a real value, so that a
# shrunk example still shows data moving; None and "" (empty fields) come after.
FIRSTNAMES = ("Ana", "Bea", "Chloé", None, "", "  Dan  ")
LASTNAMES = ("García", "Li", None, "")
PHONES = ("+34 600 000 001", "600-111-222", None, "")
COMPANIES = ("Acme", "Initech", None, "", "Umbrella SL")
MESSAGES = ("Six desks", "Line one\nline two", None, "")
SOURCES = ("web", None)


def recase(email: str, casing: Casing) -> str:
    """Return the email as a person might type it; the API must store it lowercased."""
    if casing == "upper":
        return email.upper()
    if casing == "title":
        return email.title()
    if casing == "mixed":
        return "".join(c.upper() if i % 2 else c for i, c in enumerate(email))
    return email


@dataclass(frozen=True)
class LeadSpec:
    """One form submission: which person, typed how, with which (possibly empty) fields."""

    person: int
    casing: Casing = "lower"
    firstname: str | None = None
    lastname: str | None = None
    phone: str | None = None
    company: str | None = None
    message: str | None = None
    source: str | None = None

    @property
    def email(self) -> str:
        """The person's canonical (lowercase) email."""
        return POOL[self.person]

    def body(self) -> dict[str, Any]:
        """The JSON body of POST /leads; None fields are left out, "" fields are sent."""
        fields = {
            "firstname": self.firstname,
            "lastname": self.lastname,
            "phone": self.phone,
            "company": self.company,
            "message": self.message,
            "source": self.source,
        }
        return {"email": recase(self.email, self.casing)} | {
            k: v for k, v in fields.items() if v is not None
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.body().items())
        return f"Lead({shown})"


def leads() -> st.SearchStrategy[LeadSpec]:
    """Submissions of the pool's people in random casing with changing, sometimes empty fields."""
    return st.builds(
        LeadSpec,
        person=st.integers(0, len(POOL) - 1),
        casing=st.sampled_from(["lower", "upper", "title", "mixed"]),
        firstname=st.sampled_from(FIRSTNAMES),
        lastname=st.sampled_from(LASTNAMES),
        phone=st.sampled_from(PHONES),
        company=st.sampled_from(COMPANIES),
        message=st.sampled_from(MESSAGES),
        source=st.sampled_from(SOURCES),
    )


# --- faults ----------------------------------------------------------------------------

FaultKind = Literal["5xx", "429", "daily", "bad-2xx", "hang", "drop", "slow"]
WRITE_ENDPOINTS = ("batch_upsert", "create", "update")
# Retry-After as HubSpot or a proxy in front of it may send it: absent, small, large, huge,
# unparseable, negative, past and future HTTP dates. "1e12" seconds is past datetime's range.
RETRY_AFTERS: tuple[str | None, ...] = (
    None,
    "1",
    "0.3",
    "86400",
    "1e12",
    "soon",
    "-5",
    "date:-60",
    "date:+3600",
    "date:+315360000",
)


def retry_after_header(value: str, *, now: dt.datetime | None = None) -> str:
    """Render a RETRY_AFTERS value; `date:+N` is an HTTP date N seconds from now."""
    if not value.startswith("date:"):
        return value
    when = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=float(value[5:]))
    return format_datetime(when, usegmt=True)


@dataclass(frozen=True)
class FaultSpec:
    """One injected misbehaviour of HubSpot for the next `times` matching requests.

    5xx: that status (Retry-After optional). 429: TEN_SECONDLY_ROLLING. daily: 429 DAILY.
    bad-2xx: a 200 whose body is HTML. hang: no answer, nothing applied. drop: the write is
    applied, then the connection is cut. slow: `delay_ms`, then served normally (past the
    client's 1 s total timeout when delay_ms > 1000).
    """

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    delay_ms: int = 0
    times: int = 1
    endpoints: tuple[str, ...] | None = None

    @property
    def action(self) -> str:
        """The sandbox's inject action for this fault."""
        return {"hang": "hang", "drop": "drop", "slow": "delay"}.get(self.kind, "respond")

    def request(self) -> dict[str, Any]:
        """The body of POST /_sandbox/inject."""
        body: dict[str, Any] = {"times": self.times}
        if self.endpoints is not None:
            body["endpoints"] = list(self.endpoints)
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = retry_after_header(self.retry_after)
        if self.kind == "5xx":
            body |= {"status": self.status, "json": error_body("injected 5xx", "INTERNAL_ERROR")}
        elif self.kind in ("429", "daily"):
            policy = "DAILY" if self.kind == "daily" else "TEN_SECONDLY_ROLLING"
            body |= {"status": 429, "json": rate_limit_body(policy, category="RATE_LIMITS")}
        elif self.kind == "bad-2xx":
            body |= {"status": 200, "content": "<html>OK</html>"}
            headers["Content-Type"] = "text/html"
        else:
            body["action"] = self.action
            if self.kind == "slow":
                body["delay_ms"] = self.delay_ms
        if headers and self.action == "respond":
            body["headers"] = headers
        return body

    def __repr__(self) -> str:
        parts = [repr(self.kind)]
        if self.kind == "5xx":
            parts.append(f"status={self.status}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after!r}")
        if self.kind == "slow":
            parts.append(f"delay_ms={self.delay_ms}")
        if self.times != 1:
            parts.append(f"times={self.times}")
        if self.endpoints is not None:
            parts.append(f"endpoints={list(self.endpoints)}")
        return f"Fault({', '.join(parts)})"


_ENDPOINT_CHOICES: tuple[tuple[str, ...] | None, ...] = (
    None,
    ("batch_upsert",),
    ("create", "update"),
    ("update",),
    WRITE_ENDPOINTS,
    ("gdpr_delete",),
)
# What a GDPR delete is made to suffer when a fault targets it alone (a fault for every
# endpoint, `endpoints=None`, reaches it with any kind).
GDPR_DELETE_KINDS: tuple[FaultKind, ...] = ("5xx", "429", "drop", "hang")
# "daily" appears once among many: a daily pause idles the rest of the example.
_KINDS: tuple[FaultKind, ...] = (
    "5xx",
    "429",
    "drop",
    "hang",
    "slow",
    "5xx",
    "429",
    "bad-2xx",
    "drop",
    "slow",
    "daily",
)


@st.composite
def faults(draw: st.DrawFn) -> FaultSpec:
    """A fault of any kind, with the parameters that kind takes."""
    kind = draw(st.sampled_from(_KINDS))
    times = draw(st.integers(1, 3))
    endpoints = draw(st.sampled_from(_ENDPOINT_CHOICES))
    if endpoints == ("gdpr_delete",) and kind not in GDPR_DELETE_KINDS:
        kind = draw(st.sampled_from(GDPR_DELETE_KINDS))
    if kind == "5xx":
        status = draw(st.sampled_from([503, 500, 502, 504]))
        return FaultSpec(kind, status, draw(st.sampled_from(RETRY_AFTERS)), 0, times, endpoints)
    if kind in ("429", "daily"):
        return FaultSpec(kind, 429, draw(st.sampled_from(RETRY_AFTERS)), 0, times, endpoints)
    if kind == "slow":
        delay = draw(st.sampled_from([1500, 300, 2500]))
        return FaultSpec(kind, 200, None, delay, times, endpoints)
    return FaultSpec(kind, 200, None, 0, 1 if kind == "hang" else times, endpoints)


# (status, category) of a 207's per-input errors: HubSpot means "not now" by the first three
# (retried), "never" by the last (the lead FAILS). In single mode the whole call gets them.
INPUT_ERRORS = (
    ("500", "INTERNAL_ERROR"),
    ("423", "LOCKED"),
    ("429", "RATE_LIMITS"),
    ("400", "VALIDATION_ERROR"),
)
PERMANENT_INPUT_ERRORS = frozenset({("400", "VALIDATION_ERROR")})


@dataclass(frozen=True)
class InputErrorSpec:
    """The next `times` writes of this person fail: inside a 207, or whole in single mode."""

    person: int
    status: str = "500"
    category: str = "INTERNAL_ERROR"
    times: int = 1

    @property
    def email(self) -> str:
        """The person's email."""
        return POOL[self.person]

    @property
    def temporary(self) -> bool:
        """Whether HubSpot means "try again" by this error."""
        return (self.status, self.category) not in PERMANENT_INPUT_ERRORS

    def request(self) -> dict[str, Any]:
        """The body of POST /_sandbox/input-errors."""
        return {
            "email": self.email,
            "status": self.status,
            "category": self.category,
            "message": f"injected {self.category} for {self.email}",
            "times": self.times,
        }

    def __repr__(self) -> str:
        return f"InputError({self.email!r}, {self.status} {self.category}, times={self.times})"


@st.composite
def input_errors(draw: st.DrawFn) -> InputErrorSpec:
    """Per-input errors of a valid person (the refused one fails anyway), 1 or 2 times."""
    person = draw(st.integers(0, len(POOL) - 2))
    status, category = draw(st.sampled_from(INPUT_ERRORS))
    return InputErrorSpec(person, status, category, draw(st.integers(1, 2)))


@st.composite
def stalls(draw: st.DrawFn) -> FaultSpec:
    """A fault that keeps the next write in flight for a while: a hang (nothing applied; the
    client gives up after its total timeout) or a delay (applied late, possibly after the
    client gave up)."""
    if draw(st.booleans()):
        return FaultSpec("hang", 200, None, 0, 1, WRITE_ENDPOINTS)
    delay = draw(st.sampled_from([1500, 600, 2500]))
    return FaultSpec("slow", 200, None, delay, 1, WRITE_ENDPOINTS)


@dataclass(frozen=True)
class Plan:
    """Per-example set-up: workers at start, claim size, sandbox latency and 400 style."""

    workers: int = 1
    batch_size: int = 100
    latency_ms: int = 0
    invalid_batch: Literal["whole", "per-input"] = "per-input"


def plans() -> st.SearchStrategy[Plan]:
    """Plans: 1-2 workers, claims of 100, 3 or 1 leads, 0 or 25 ms sandbox latency."""
    return st.builds(
        Plan,
        workers=st.integers(1, 2),
        batch_size=st.sampled_from([100, 3, 1]),
        latency_ms=st.sampled_from([0, 25]),
        invalid_batch=st.sampled_from(["per-input", "whole"]),
    )
