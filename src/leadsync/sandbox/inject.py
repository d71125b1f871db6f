"""Injected responses: a test and demo aid that makes the next CRM requests get a canned answer.

`POST /_sandbox/inject` queues one (`times` = 1) or several identical answers; each CRM request
(any path under /crm/) takes the oldest one instead of being served, before the token, the rate
limits and the fault knobs are looked at, and without touching the contacts. That reproduces
answers the sandbox never gives by itself (a 403 MISSING_SCOPES, a 423, an HTML 502 from a
proxy, a 409 without an id...). `DELETE /_sandbox/inject` and `/_sandbox/reset` drop the queue.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from leadsync.sandbox.errors import dumps

MAX_TIMES = 10_000


class InjectedResponse(BaseModel):
    """One canned answer: a status, a JSON body (`json`) or a raw text body (`content`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    status: int = Field(ge=200, le=599)  # a final answer; 1xx cannot end a request
    json_body: Any = Field(default=None, alias="json")
    content: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    times: int = Field(default=1, ge=1, le=MAX_TIMES)

    @model_validator(mode="after")
    def _one_body(self) -> InjectedResponse:
        if self.json_body is not None and self.content is not None:
            raise ValueError("give either json or content, not both")
        return self

    def response(self) -> Response:
        """Build the answer; a JSON body is sent as application/json unless headers say else."""
        if self.json_body is not None:
            body, media_type = dumps(self.json_body), "application/json"
        else:
            body, media_type = (self.content or "").encode(), None
        if any(name.lower() == "content-type" for name in self.headers):
            media_type = None
        return Response(body, status_code=self.status, headers=self.headers, media_type=media_type)


@dataclass(slots=True)
class _Pending:
    item: InjectedResponse
    left: int


class InjectionQueue:
    """Pending injected answers, oldest first, each with the requests it still answers."""

    def __init__(self) -> None:
        self._pending: deque[_Pending] = deque()
        # The control API and the gate share one event loop, but a test may also push from
        # its own thread through `sandbox.state`, so every access takes the lock.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return how many CRM requests will still get an injected answer."""
        with self._lock:
            return sum(pending.left for pending in self._pending)

    def push(self, item: InjectedResponse) -> None:
        """Queue `item` for the next `item.times` CRM requests after those already queued."""
        with self._lock:
            self._pending.append(_Pending(item, item.times))

    def take(self) -> InjectedResponse | None:
        """Return the answer for the next CRM request, or None to serve it normally."""
        with self._lock:
            if not self._pending:
                return None
            head = self._pending[0]
            head.left -= 1
            if head.left <= 0:
                self._pending.popleft()
            return head.item

    def clear(self) -> None:
        """Drop every pending answer."""
        with self._lock:
            self._pending.clear()
