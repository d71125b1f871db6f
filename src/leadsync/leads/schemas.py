"""Request and response shapes of the lead API, with every field's rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Control characters break CRMs and PostgreSQL rejects NUL outright; a message may keep
# line breaks and tabs, single-line fields may not.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SINGLE_LINE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_PHONE_RE = re.compile(r"^\+?[0-9 ()./\-]*[0-9][0-9 ()./\-]*(?:\s*(?:x|ext\.?)\s*[0-9]{1,6})?$")
# \Z, not $: "$" also matches before a trailing newline.
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}\Z")


def _single_line(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if _SINGLE_LINE_CONTROL_RE.search(value):
        raise ValueError("must be a single line without control characters")
    return value or None


class LeadIn(BaseModel):
    """A lead as the website's form submits it."""

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

    email: Annotated[str, Field(max_length=254, description="Required; stored lowercased.")]
    firstname: Annotated[str | None, Field(max_length=100)] = None
    lastname: Annotated[str | None, Field(max_length=100)] = None
    phone: Annotated[
        str | None,
        Field(max_length=32, description="Digits, spaces and + ( ) - . / and an extension."),
    ] = None
    company: Annotated[str | None, Field(max_length=100)] = None
    message: Annotated[str | None, Field(max_length=5000)] = None
    source: Annotated[
        str | None, Field(max_length=64, description="Where the lead came from, e.g. a form name.")
    ] = None

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is required")
        if _SINGLE_LINE_CONTROL_RE.search(value):
            raise ValueError("must not contain control characters")
        try:
            checked = validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"is not a valid email address: {exc}") from None
        # HubSpot treats email case-insensitively; one canonical form avoids twin contacts.
        return checked.normalized.lower()

    @field_validator("firstname", "lastname", "company", "source")
    @classmethod
    def _check_single_line(cls, value: str | None) -> str | None:
        return _single_line(value)

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        value = _single_line(value)
        if value is not None and not _PHONE_RE.match(value):
            raise ValueError("may contain only digits, spaces and + ( ) - . / and an extension")
        return value

    @field_validator("message")
    @classmethod
    def _check_message(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _CONTROL_RE.search(value):
            raise ValueError("must not contain control characters other than line breaks and tabs")
        return value.strip() or None

    def fingerprint(self) -> str:
        """Return a stable hash of the normalised lead, to recognise a replayed submission."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class LeadOut(BaseModel):
    """A stored lead as the public API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    firstname: str | None
    lastname: str | None
    phone: str | None
    company: str | None
    message: str | None
    source: str | None
    created_at: dt.datetime
    hubspot_sync_status: str


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


class LeadPage(BaseModel):
    """One page of leads, newest first; pass `next_after` as `after` for the next page."""

    items: list[LeadDetail]
    next_after: int | None


class ErrorItem(BaseModel):
    """One problem with one field of the request."""

    field: str
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a sentence to show, and per-field details when there are any."""

    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)

    @classmethod
    def of(cls, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Return the JSON body for a detail and optional field errors."""
        return cls(detail=detail, errors=[ErrorItem(**e) for e in errors or []]).model_dump()
