"""HubSpot in the tests: the sandbox, programmed through its control API (docs/sandbox.md).

The sandbox (`leadsync.sandbox`, a real HTTP server) is the tests' one HubSpot stand-in: its
own behaviour for the documented answers, `POST /_sandbox/inject` for a canned answer, a
dropped connection, a hang or a delay, and `POST /_sandbox/input-errors` for a per-input
error. respx stays only in the few tests that need a transport-level fault no server can
make (an exact httpx exception, bytes that are not UTF-8, a 3xx); each says why.

`SandboxHubSpot` wraps a running sandbox for one test; `RecordingTransport` is real HTTP that
remembers every request a client sent, so a test can assert what went over the wire.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from leadsync.hubspot import HubSpotClient
from leadsync.sandbox import RunningSandbox, SandboxConfig

CONTACTS = "/crm/v3/objects/contacts"
UPSERT = f"{CONTACTS}/batch/upsert"
SEARCH = f"{CONTACTS}/search"
GDPR_DELETE = f"{CONTACTS}/gdpr-delete"


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """Return HubSpot's standard error body (docs/hubspot.md)."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
        "category": category,
    }
    return body | extra


def rate_limit_body(policy: str = "TEN_SECONDLY_ROLLING", **extra: Any) -> dict[str, Any]:
    """Return HubSpot's 429 body for a rate-limit policy."""
    body = {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee00-0000-4000-8000-000000000429",
        "policyName": policy,
    }
    return body | extra


@functools.cache
def _tls() -> ssl.SSLContext:
    # The control API is plain HTTP, but every httpx client builds a TLS context (certifi,
    # ~0.1 s); one shared context keeps a test's control calls cheap.
    return ssl.create_default_context()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real HTTP that appends every request a client sends to `sent`, as httpx built it."""

    def __init__(self, sent: list[httpx.Request]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent = sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class SandboxHubSpot:
    """A running sandbox for one test: its address and token, its control API, and `sent`.

    `sent` holds the requests of every client built on `transport()`, in order.
    """

    sandbox: RunningSandbox
    sent: list[httpx.Request] = field(default_factory=list)

    @classmethod
    def fresh(cls, sandbox: RunningSandbox, **config: Any) -> SandboxHubSpot:
        """Return the sandbox with `SandboxConfig(**config)`, no contacts, nothing pending."""
        sandbox.state.config = SandboxConfig(**config)
        sandbox.state.reset()
        return cls(sandbox)

    @property
    def url(self) -> str:
        """The sandbox's base URL (HubSpot's `https://api.hubapi.com`)."""
        return self.sandbox.url

    @property
    def token(self) -> str:
        """A token the sandbox accepts."""
        return self.sandbox.token

    def transport(self) -> RecordingTransport:
        """Return a new transport for one client; its requests land in `sent`."""
        return RecordingTransport(self.sent)

    def client(self, **overrides: Any) -> HubSpotClient:
        """Return a HubSpotClient on the sandbox with today's token, recording into `sent`.

        The token is read now: a test that then revokes it keeps a client with the old one.
        Keyword arguments go to HubSpotClient (observer, timeouts, token_provider...).
        """
        token = self.token
        kwargs: dict[str, Any] = {
            "base_url": self.url,
            "token_provider": lambda: token,
            "transport": self.transport(),
        }
        return HubSpotClient(**(kwargs | overrides))

    async def inject(self, **injection: Any) -> int:
        """Queue an injection (`POST /_sandbox/inject`: action, status, json, content,
        headers, endpoints, times, delay_ms, hang_seconds); return how many are pending."""
        answer = await self.control("POST", "/inject", injection)
        pending: int = answer["pending"]
        return pending

    async def fail_input(
        self, email: str, *, status: str, category: str, message: str | None = None, times: int = 1
    ) -> None:
        """Make the next `times` writes of `email` fail (`POST /_sandbox/input-errors`)."""
        body: dict[str, Any] = {"email": email, "status": status, "category": category}
        body |= {"times": times} | ({"message": message} if message is not None else {})
        await self.control("POST", "/input-errors", body)

    async def configure(self, **changes: Any) -> dict[str, Any]:
        """Change the sandbox's config (`PATCH /_sandbox/config`) and return it."""
        return await self.control("PATCH", "/config", changes)

    async def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Return the request log (`GET /_sandbox/requests`), oldest first; `endpoint` keeps
        only that endpoint's requests (`batch_upsert`, `create`...)."""
        logged: list[dict[str, Any]] = (await self.control("GET", "/requests"))["requests"]
        return [entry for entry in logged if endpoint in (None, entry["endpoint"])]

    async def stats(self) -> dict[str, Any]:
        """Return the sandbox's counters (`GET /_sandbox/stats`)."""
        return await self.control("GET", "/stats")

    async def contacts(self) -> list[dict[str, Any]]:
        """Return every contact with all its properties (`GET /_sandbox/contacts`)."""
        results: list[dict[str, Any]] = (await self.control("GET", "/contacts"))["results"]
        return results

    async def gdpr_deletions(self) -> list[dict[str, Any]]:
        """Return every gdpr-delete the sandbox applied, oldest first
        (`GET /_sandbox/gdpr-deletions`): `at`, `objectId`, `idProperty`,
        `deleted_contact_id`, `blocklisted`."""
        applied: list[dict[str, Any]] = await self._control_json("GET", "/gdpr-deletions")
        return applied

    async def blocklist(self) -> list[dict[str, Any]]:
        """Return the blocklisted emails in the order added (`GET /_sandbox/blocklist`):
        `email`, `added_at`, `recreated_at`, `recreated_contact_id`."""
        listed: list[dict[str, Any]] = await self._control_json("GET", "/blocklist")
        return listed

    async def control(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call the control API and return its JSON answer; fail the test on an error."""
        answer: dict[str, Any] = await self._control_json(method, path, body)
        return answer

    async def _control_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        control = f"{self.url}/_sandbox"
        async with httpx.AsyncClient(base_url=control, timeout=10, verify=_tls()) as http:
            response = await http.request(method, path, json=body)
        assert response.is_success, f"{method} /_sandbox{path}: {response.text}"
        return response.json()


@dataclass
class Observed:
    """What a HubSpotClient reported to its observer: (operation, http status, seconds)."""

    events: list[tuple[str, int | None, float]] = field(default_factory=list)

    def __call__(self, operation: str, status: int | None, seconds: float) -> None:
        self.events.append((operation, status, seconds))

    @property
    def statuses(self) -> list[tuple[str, int | None]]:
        """Return (operation, status) pairs, without the timings."""
        return [(op, status) for op, status, _ in self.events]
