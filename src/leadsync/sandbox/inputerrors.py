"""Injected per-input errors: the next writes of one email fail, the rest of a batch lands.

`POST /_sandbox/input-errors` with `{"email", "status", "category", "message", "times"}` makes
the next `times` writes of that email fail without being applied: in a batch upsert the input
comes back as a per-input error of a 207 (HubSpot's StandardError, with this `status`,
`category` and `message`) while the other inputs are applied; a single create or update of
that email is answered HTTP `status` (400 if it is not a number) with HubSpot's error body.
A write takes a pending error only once it is valid and about to be applied.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from leadsync.sandbox.inject import MAX_TIMES
from leadsync.sandbox.replies import batch_error, error_response

_CATEGORY = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


class InputError(BaseModel):
    """How the next `times` writes of `email` fail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str = Field(min_length=1)
    status: str = Field(min_length=1, max_length=64)
    category: str = Field(max_length=128)
    message: str | None = None
    times: int = Field(default=1, ge=1, le=MAX_TIMES)

    @field_validator("email")
    @classmethod
    def _normalise_email(cls, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise ValueError("email must not be blank")
        return value

    @field_validator("category")
    @classmethod
    def _check_category(cls, value: str) -> str:
        if not _CATEGORY.fullmatch(value):
            raise ValueError(
                f"category must be an UPPER_SNAKE word such as INTERNAL_ERROR, not {value!r}"
            )
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status_text(cls, value: object) -> object:
        # HubSpot's StandardError carries the status as a string; a bare number is accepted.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("status")
    @classmethod
    def _check_status(cls, value: str) -> str:
        if value.isdigit() and not 200 <= int(value) <= 599:
            raise ValueError("a numeric status must be an HTTP status from 200 to 599")
        return value

    @property
    def http_status(self) -> int:
        """The status a single-mode call is answered with: `status`, or 400 if not a number."""
        return int(self.status) if self.status.isdigit() else 400

    @property
    def text(self) -> str:
        """The error message, a default naming the email and category if none was given."""
        return self.message or f"Injected sandbox error for {self.email}: {self.category}"

    def batch_error(self, *, trace_id: str | None) -> dict[str, Any]:
        """The StandardError of one refused batch input."""
        error = batch_error(self.category, self.text, ids=[self.email], trace_id=trace_id)
        error["status"] = self.status
        return error

    def response(self) -> Response:
        """The whole answer to a refused single create or update."""
        return error_response(self.http_status, self.category, self.text)


@dataclass(slots=True)
class _Pending:
    rule: InputError
    left: int


class InputErrorBook:
    """Pending input errors by email, oldest first; safe to use from any thread."""

    def __init__(self) -> None:
        self._pending: dict[str, deque[_Pending]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return how many writes will still fail."""
        with self._lock:
            return sum(p.left for queue in self._pending.values() for p in queue)

    def __bool__(self) -> bool:
        """Whether any error is pending (cheap: no lock)."""
        return bool(self._pending)

    def push(self, rule: InputError) -> None:
        """Fail the next `rule.times` writes of `rule.email`, after those already pending."""
        with self._lock:
            self._pending.setdefault(rule.email, deque()).append(_Pending(rule, rule.times))

    def take(self, email: str) -> InputError | None:
        """Return the error the next write of `email` (lowercased) gets, or None to apply it."""
        if not self._pending:  # the common case, without the lock
            return None
        with self._lock:
            queue = self._pending.get(email)
            if not queue:
                return None
            head = queue[0]
            head.left -= 1
            if head.left <= 0:
                queue.popleft()
                if not queue:
                    del self._pending[email]
            return head.rule

    def listed(self) -> list[dict[str, Any]]:
        """Every pending error, in the order pushed per email, with the writes it still fails."""
        with self._lock:
            return [
                {**p.rule.model_dump(), "message": p.rule.text, "times": p.left}
                for queue in self._pending.values()
                for p in queue
            ]

    def clear(self) -> None:
        """Drop every pending error."""
        with self._lock:
            self._pending.clear()
