"""The shapes the use cases take and return, shared by the HTTP routes and the CLI.

Leads: what the website submits (every field's rules) and what operators read. Sync: the
resync filter and the status report. The lead's fields are checked against the one list in
`store/tables.py` at import, so a field added there and forgotten here stops the start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadsync.emails import EMAIL_PATTERN, MAX_EMAIL, canonical_email
from leadsync.engine.gate import PauseReason
from leadsync.limits import (
    HISTORY_SHOWN,
    MAX_ID,
    MAX_OLDER_THAN_SECONDS,
    MAX_RESYNC_IDS,
    MAX_RESYNC_LIMIT,
)
from leadsync.store.tables import LEAD_FIELDS, SyncOutcome, SyncStatus

# Text fields follow one rule, in this order (docs/api.md, "Text fields"):
#   1. refuse control characters (Unicode Cc: U+0000-U+001F, U+007F-U+009F); `message` may
#      keep tab, LF and CR; single-line fields also refuse the Unicode line and paragraph
#      separators U+2028/U+2029 (unpaired surrogates never get here: strictjson refuses them);
#   2. then a field's own pattern (phone);
#   3. then strip surrounding whitespace (the characters below; the message also loses
#      surrounding line breaks and tabs);
#   4. a value left empty is null (an email is required).
# Refusing before stripping matters: Python's strip() also removes U+001C-U+001F, so
# "Ana\x1f" would otherwise be stored as "Ana". The patterns are published in the OpenAPI
# schema as they are used here.
# Python's whitespace less what step 1 refuses: the characters strip() removes in step 3.
SPACE_CHARS = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"  # the same, as a class
SINGLE_LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
MESSAGE_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
_PHONE_CORE = r"\+?[0-9 ()./-]*[0-9][0-9 ()./-]*(?: *(?:x|ext\.?) *[0-9]{1,6})?"
PHONE_PATTERN = rf"^[{SPACES}]*(?:{_PHONE_CORE})?[{SPACES}]*$"
_SINGLE_LINE_RE = re.compile(SINGLE_LINE_PATTERN)
_MESSAGE_RE = re.compile(MESSAGE_PATTERN)
_PHONE_RE = re.compile(PHONE_PATTERN)
# \Z, not $: "$" also matches before a trailing newline.
IDEMPOTENCY_KEY_PATTERN = r"^[\u0021-\u007e]{1,255}$"
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}\Z")

_CONTROL = "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"


def _single_line(value: str) -> str:
    """Apply steps 1 and 3 of the rule to a single-line value; return it stripped."""
    if not _SINGLE_LINE_RE.fullmatch(value):
        raise ValueError(f"{_CONTROL} or line breaks")
    return value.strip(SPACE_CHARS)


# String types whose pattern is published in the schema but checked by the validators below
# (fullmatch, as JSON Schema means it), so that each refusal reads well.
_SingleLine = {"pattern": SINGLE_LINE_PATTERN}
Name = Annotated[str, Field(max_length=100, json_schema_extra=_SingleLine)]
Source = Annotated[str, Field(max_length=64, json_schema_extra=_SingleLine)]
Phone = Annotated[str, Field(max_length=32, json_schema_extra={"pattern": PHONE_PATTERN})]
Message = Annotated[str, Field(max_length=5000, json_schema_extra={"pattern": MESSAGE_PATTERN})]


class LeadIn(BaseModel):
    """A lead as the website's form submits it.

    Every text field: control characters are refused, then surrounding whitespace is
    stripped, then an empty value is null. Lengths count the characters sent.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ana.garcia@example.com",
                    "firstname": "Ana",
                    "lastname": "García",
                    "phone": "+34 600 123 456",
                    "company": "Acme Coworking SL",
                    "message": "We are 6 people looking for desks from January.",
                    "source": "website-contact-form",
                }
            ]
        },
    )

    email: Annotated[
        str,
        Field(
            max_length=MAX_EMAIL,
            json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
            description="Required. Stored and sent to HubSpot in its canonical form: ASCII "
            "letters lowercased, the domain in ASCII (punycode), e.g. `Ana@Bücher.DE` becomes "
            "`ana@xn--bcher-kva.de`. The part before the @ must be ASCII, at most 64 "
            "characters; at most 254 characters in all once the domain is ASCII; the domain "
            "needs a dot, and special-use "
            "domains (.test, .invalid, .local, .localhost, .onion, .arpa) are refused.",
        ),
    ]
    firstname: Name | None = None
    lastname: Name | None = None
    phone: Annotated[
        Phone | None,
        Field(description="Digits, spaces and + ( ) - . / and an extension (`x 12`, `ext. 12`)."),
    ] = None
    company: Name | None = None
    message: Annotated[
        Message | None,
        Field(description="May hold line breaks and tabs."),
    ] = None
    source: Annotated[
        Source | None,
        Field(description="Where the lead came from, e.g. a form name."),
    ] = None

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        value = _single_line(value)
        if not value:
            raise ValueError("is required")
        return canonical_email(value)

    @field_validator("firstname", "lastname", "company", "source")
    @classmethod
    def _check_single_line(cls, value: str | None) -> str | None:
        return None if value is None else _single_line(value) or None

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _SINGLE_LINE_RE.fullmatch(value):
            raise ValueError(f"{_CONTROL} or line breaks")
        if not _PHONE_RE.fullmatch(value):
            raise ValueError(
                "may contain only digits, spaces and + ( ) - . / and an extension (x 12)"
            )
        return value.strip(SPACE_CHARS) or None

    @field_validator("message")
    @classmethod
    def _check_message(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _MESSAGE_RE.fullmatch(value):
            raise ValueError(f"{_CONTROL} other than tab, LF and CR")
        return value.strip(SPACE_CHARS + "\t\n\r\u2028\u2029") or None

    def fingerprint(self) -> str:
        """Return a stable hash of the normalised lead, to recognise a replayed submission."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class LeadOut(BaseModel):
    """A stored lead as the public API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str | None = Field(
        description="Canonical email; null once the lead's personal data was removed "
        "(an erasure or the retention period, docs/privacy.md)."
    )
    firstname: str | None
    lastname: str | None
    phone: str | None
    company: str | None
    message: str | None
    source: str | None
    created_at: dt.datetime
    hubspot_sync_status: SyncStatus


class LeadDetail(LeadOut):
    """A lead with every sync column, for operators."""

    updated_at: dt.datetime
    hubspot_id: str | None
    hubspot_synced_at: dt.datetime | None
    hubspot_error: str | None
    hubspot_sync_attempts: int
    last_hubspot_attempt_at: dt.datetime | None
    hubspot_next_attempt_at: dt.datetime | None
    hubspot_lease_expires_at: dt.datetime | None
    hubspot_last_http_status: int | None
    scrubbed_at: dt.datetime | None = Field(
        default=None,
        description="When the personal fields were removed (erasure or retention), if ever.",
    )


class HistoryOut(BaseModel):
    """One HubSpot outcome of a lead (a row of its sync history)."""

    attempted_at: dt.datetime
    attempt: int = Field(
        description="The lead's attempt count after this outcome (429s and releases use none)."
    )
    outcome: SyncOutcome
    http_status: int | None
    error: str | None = Field(description="HubSpot's message, truncated, without secrets.")
    duration_ms: int | None = Field(description="How long the batch's HubSpot round took.")
    worker_id: str | None = Field(description="The worker that recorded it (host:pid:nonce).")
    hubspot_id: str | None


class LeadWithHistory(LeadDetail):
    """A lead with every sync column and its sync history."""

    history: list[HistoryOut] = Field(
        description=f"The newest {HISTORY_SHOWN} HubSpot outcomes, oldest first; kept "
        "LEADSYNC_HISTORY_DAYS days."
    )


class LeadPage(BaseModel):
    """One page of leads, newest first; pass `next_after` as `after` for the next page."""

    items: list[LeadDetail]
    next_after: int | None


def _check_lead_fields(*models: type[BaseModel]) -> None:
    for model in models:
        fields = tuple(name for name in model.model_fields if name in LEAD_FIELDS)
        if set(LEAD_FIELDS) - set(model.model_fields) or fields != LEAD_FIELDS:
            raise RuntimeError(f"{model.__name__} does not carry LEAD_FIELDS {LEAD_FIELDS}")


_check_lead_fields(LeadIn, LeadOut, LeadDetail, LeadWithHistory)


class ResyncRequest(BaseModel):
    """Which FAILED leads to requeue; every filter is optional and they combine with AND.

    Strict: an operator's typo must not act on real rows, so `true` is not lead 1 and `"2"` is
    not lead 2; numbers outside their range are refused rather than clamped.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    lead_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
        Field(
            max_length=MAX_RESYNC_IDS,
            description=f"Only these leads (at most {MAX_RESYNC_IDS:,} ids, each 1 to 2^63-1).",
        ),
    ] = None
    older_than_seconds: Annotated[
        float | None,
        Field(
            ge=0,
            le=MAX_OLDER_THAN_SECONDS,
            allow_inf_nan=False,
            description="Only leads whose last attempt is at least this many seconds old "
            f"(0 to {MAX_OLDER_THAN_SECONDS:,}, i.e. 100 years).",
        ),
    ] = None
    limit: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_RESYNC_LIMIT,
            description=f"Requeue at most this many, lowest ids first (1 to {MAX_RESYNC_LIMIT:,}).",
        ),
    ] = None


# The filter of a resync without a body: every FAILED lead.
EVERY_FAILED_LEAD = ResyncRequest()


class ResyncResponse(BaseModel):
    """How many FAILED leads went back to PENDING."""

    requeued: int


class GateOut(BaseModel):
    """The shared pause switch."""

    paused: bool
    reason: str | None
    detail: str | None
    paused_until: dt.datetime | None
    auth_failures: int


class BudgetOut(BaseModel):
    """The shared HubSpot request budget and what HubSpot last reported."""

    limit: str
    seconds_between_requests: float
    next_slot_at: dt.datetime
    reported_max: int | None
    reported_remaining: int | None
    daily_remaining: int | None


class SyncStatusOut(BaseModel):
    """The queue at a glance."""

    counts: dict[str, int]
    oldest_due_seconds: float | None
    gate: GateOut
    budget: BudgetOut


class PauseResult(BaseModel):
    """A pause by hand: in force, the pause it replaced (if any) and its recorded detail."""

    paused: bool
    replaced: str | None
    detail: str


class ResumeResult(BaseModel):
    """What a resume lifted (`manual`, `auth` or nothing) and a HubSpot pause that stays."""

    lifted: PauseReason | None
    still_paused: PauseReason | None
    paused_until: dt.datetime | None
