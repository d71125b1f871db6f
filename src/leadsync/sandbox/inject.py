"""Injected behaviours: a test aid that decides what happens to the next CRM requests.

`POST /_sandbox/inject` queues one (`times` = 1) or several identical injections; each CRM
request (any path under /crm/) takes the oldest one it matches (`endpoints`, default every
endpoint) instead of being served normally, before the token, the rate limits and the fault
knobs are looked at. The `action` says what happens:

- `respond` (default): a canned answer (`status`, `json` or `content`, `headers`), nothing
  applied. That reproduces answers the sandbox never gives by itself (a 403 MISSING_SCOPES,
  a 423, an HTML 502 from a proxy, a 409 without an id...).
- `drop`: the request is served (the write lands), then the connection is cut unanswered.
- `hang`: the request is held unanswered, nothing applied, until the client leaves or
  `hang_seconds` (default: the config's) pass; a client still there then gets a 504.
- `delay`: the request waits `delay_ms`, then is served (the write lands late, even if the
  client gave up meanwhile).

`DELETE /_sandbox/inject` and `/_sandbox/reset` drop the queue.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from leadsync.sandbox.replies import dumps

MAX_TIMES = 10_000
MAX_DELAY_MS = 600_000.0  # ten minutes: longer than any client timeout worth testing
MAX_HANG_SECONDS = 3_600.0

Action = Literal["respond", "drop", "hang", "delay"]
Endpoint = Literal[
    "create",
    "update",
    "batch_upsert",
    "search",
    "list",
    "read",
    "batch_read",
    "gdpr_delete",
    "other",
]


class InjectedResponse(BaseModel):
    """One injection: what happens to the CRM requests that take it."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    action: Action = "respond"
    # A final answer; 1xx cannot end a request. Required for (and only for) `respond`.
    status: int | None = Field(default=None, ge=200, le=599)
    json_body: Any = Field(default=None, alias="json")
    content: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    delay_ms: float | None = Field(default=None, gt=0, le=MAX_DELAY_MS)
    hang_seconds: float | None = Field(default=None, gt=0, le=MAX_HANG_SECONDS)
    endpoints: frozenset[Endpoint] | None = None
    times: int = Field(default=1, ge=1, le=MAX_TIMES)

    @model_validator(mode="after")
    def _consistent(self) -> InjectedResponse:
        if self.json_body is not None and self.content is not None:
            raise ValueError("give either json or content, not both")
        if self.action == "respond":
            if self.status is None:
                raise ValueError("status is required when action is respond")
        else:
            answer = {
                "status": self.status is not None,
                "json": self.json_body is not None,
                "content": self.content is not None,
                "headers": bool(self.headers),
            }
            given = [name for name, present in answer.items() if present]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise ValueError(
                    f"{', '.join(given)} only {verb} to action respond, not {self.action}"
                )
        if self.action == "delay" and self.delay_ms is None:
            raise ValueError("delay_ms is required when action is delay")
        if self.action != "delay" and self.delay_ms is not None:
            raise ValueError(f"delay_ms only applies to action delay, not {self.action}")
        if self.action != "hang" and self.hang_seconds is not None:
            raise ValueError(f"hang_seconds only applies to action hang, not {self.action}")
        if self.endpoints is not None and not self.endpoints:
            raise ValueError("endpoints must name at least one endpoint (omit it for all)")
        return self

    def matches(self, endpoint: str) -> bool:
        """Whether a request to `endpoint` takes this injection."""
        return self.endpoints is None or endpoint in self.endpoints

    @property
    def retry_after(self) -> float | None:
        """The Retry-After this answer sends, in seconds, when it sends a numeric one."""
        for name, value in self.headers.items():
            if name.lower() == "retry-after":
                try:
                    seconds = float(value)
                except ValueError:
                    return None  # an HTTP date: not a number of seconds
                return seconds if math.isfinite(seconds) else None
        return None

    @property
    def policy(self) -> str | None:
        """The `policyName` of the JSON answer (a 429's), if any."""
        body = self.json_body
        name = body.get("policyName") if isinstance(body, dict) else None
        return name if isinstance(name, str) else None

    def response(self) -> Response:
        """Build the answer; a JSON body is sent as application/json unless headers say else."""
        if self.json_body is not None:
            body, media_type = dumps(self.json_body), "application/json"
        else:
            body, media_type = (self.content or "").encode(), None
        if any(name.lower() == "content-type" for name in self.headers):
            media_type = None
        status = 200 if self.status is None else self.status
        return Response(body, status_code=status, headers=self.headers, media_type=media_type)


@dataclass(slots=True)
class _Pending:
    item: InjectedResponse
    left: int


class InjectionQueue:
    """Pending injections, oldest first, each with the requests it still applies to."""

    def __init__(self) -> None:
        self._pending: deque[_Pending] = deque()
        # The control API and the gate share one event loop, but a test may also push from
        # its own thread through `sandbox.state`, so every access takes the lock.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return how many CRM requests will still take an injection."""
        with self._lock:
            return sum(pending.left for pending in self._pending)

    def push(self, item: InjectedResponse) -> None:
        """Queue `item` for the next `item.times` matching requests after those already queued."""
        with self._lock:
            self._pending.append(_Pending(item, item.times))

    def take(self, endpoint: str) -> InjectedResponse | None:
        """Return the oldest injection a request to `endpoint` matches, or None to serve it."""
        with self._lock:
            if not self._pending:
                return None
            for index, pending in enumerate(self._pending):
                if pending.item.matches(endpoint):
                    pending.left -= 1
                    if pending.left <= 0:
                        del self._pending[index]
                    return pending.item
            return None

    def clear(self) -> None:
        """Drop every pending injection."""
        with self._lock:
            self._pending.clear()
