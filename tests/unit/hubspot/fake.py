"""A respx-backed HubSpot that answers like the real one (docs/hubspot.md), for the client's tests.

`HubSpotServer` is the interface the scenario tests rely on; `FakeHubSpot` implements it with
respx, and `sandbox_hubspot.SandboxHubSpot` with the sandbox over real HTTP (transport None);
conftest.py runs every scenario against both.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
import respx

BASE_URL = "https://api.hubapi.test"
TOKEN = "pat-na1-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CONTACTS = "/crm/v3/objects/contacts"
# HubSpot's default contact properties (docs/hubspot.md); a custom one (lead_source...) does
# not exist until created in the portal, so it is refused, as the sandbox refuses it without
# extra_properties.
KNOWN_PROPERTIES = {
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "message",
    "lifecyclestage",
    "hs_lead_status",
}
NAMED_ON_CREATE = ("email", "firstname", "lastname")
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "187",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Daily": "625000",
    "X-HubSpot-RateLimit-Daily-Remaining": "624321",
}
CONTACT_JSON: dict[str, Any] = {
    "id": "512",
    "properties": {"email": "a+b@x.com", "firstname": None},
    "createdAt": "2019-10-30T03:30:17.883Z",
    "updatedAt": "2019-12-07T16:50:06.678Z",
    "archived": False,
}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NOW = "2026-08-21T10:00:00.000Z"


class HubSpotServer(Protocol):
    """What a scenario needs from a HubSpot: where it is, a valid token, and fault injection."""

    base_url: str
    token: str

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None:
        """Return the transport to reach it (None: real HTTP)."""

    async def inject(
        self,
        *,
        status: int,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> None:
        """Answer the next request with this response."""

    async def set_batch_invalid_mode(self, mode: Literal["207", "400"]) -> None:
        """Choose whether an invalid batch input yields a 207 or a whole-batch 400."""


def error_body(status: int, message: str, category: str, **extra: Any) -> dict[str, Any]:
    """Return HubSpot's standard error body."""
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}
    return body | {"category": category} | extra


def invalid_property(name: str, value: str) -> str:
    """Return HubSpot's 400 message for invalid property values (its inner JSON included)."""
    if name == "email":
        text, code = f"Email address {value} is invalid", "INVALID_EMAIL"
    else:
        text, code = f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"
    inner = {
        "isValid": False,
        "message": text,
        "error": code,
        "name": name,
        "localizedErrorMessage": text,
    }
    return "Property values were not valid: " + json.dumps([inner], separators=(",", ":"))


@dataclass
class FakeHubSpot:
    """An in-memory HubSpot contacts API served through respx, faithful to docs/hubspot.md."""

    token: str = TOKEN
    base_url: str = BASE_URL
    batch_invalid_mode: Literal["207", "400"] = "207"
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    injected: list[httpx.Response] = field(default_factory=list)
    accepted_tokens: set[str] = field(default_factory=lambda: {TOKEN})
    router: respx.MockRouter = field(init=False)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(37765128953))

    def __post_init__(self) -> None:
        self.router = respx.MockRouter(base_url=self.base_url, assert_all_called=False)
        self.router.route().mock(side_effect=self._handle)

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """Return the transport a client must use to reach this fake."""
        return httpx.MockTransport(self.router.async_handler)

    @property
    def calls(self) -> list[httpx.Request]:
        """Return every request received, in order."""
        return [call.request for call in self.router.calls]

    async def inject(
        self,
        *,
        status: int,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> None:
        """Answer the next request with this response instead of the normal one."""
        self.injected.append(
            httpx.Response(status, json=json, headers=headers, content=content)
            if content is None
            else httpx.Response(status, content=content, headers=headers)
        )

    async def set_batch_invalid_mode(self, mode: Literal["207", "400"]) -> None:
        """Choose how an invalid batch input fails (docs/hubspot.md: HubSpot's way unconfirmed)."""
        self.batch_invalid_mode = mode

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.injected:
            return self.injected.pop(0)
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.accepted_tokens:
            return httpx.Response(
                401,
                json=error_body(
                    401, "Authentication credentials not found.", "INVALID_AUTHENTICATION"
                ),
                headers={"X-HubSpot-Auth-Failure": "401 Unauthorized"},
            )
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else {}
        if method == "POST" and path == CONTACTS:
            return self._create(body["properties"])
        if method == "GET" and path == CONTACTS:
            page = list(self.contacts.values())[: int(request.url.params.get("limit", "10"))]
            return self._reply(200, {"results": page})
        if method == "POST" and path == f"{CONTACTS}/search":
            value = body["filterGroups"][0]["filters"][0]["value"].lower()
            found = [c for c in self.contacts.values() if c["properties"].get("email") == value]
            return httpx.Response(200, json={"total": len(found), "results": found})
        if method == "POST" and path == f"{CONTACTS}/batch/upsert":
            return self._upsert(body["inputs"])
        if method == "PATCH" and path.startswith(f"{CONTACTS}/"):
            return self._patch(request, body["properties"])
        return self._reply(404, error_body(404, "resource not found", "OBJECT_NOT_FOUND"))

    def _reply(self, status: int, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, json=body, headers=RATE_HEADERS)

    def _invalid(self, properties: dict[str, str]) -> str | None:
        for name, value in properties.items():
            if name not in KNOWN_PROPERTIES or (name == "email" and not _EMAIL_RE.match(value)):
                return invalid_property(name, value)
        return None

    def _by_email(self, email: str) -> dict[str, Any] | None:
        # A contact may have no email at all (a name is enough to create one).
        if not email:
            return None
        wanted = email.lower()
        return next(
            (c for c in self.contacts.values() if c["properties"].get("email") == wanted), None
        )

    def _store(self, properties: dict[str, str], existing: dict[str, Any] | None) -> dict[str, Any]:
        contact = existing or {
            "id": str(next(self._ids)),
            "properties": {},
            "createdAt": _NOW,
            "archived": False,
        }
        contact["properties"].update(
            {k: v.lower() if k == "email" else v for k, v in properties.items()}
        )
        contact["updatedAt"] = _NOW
        self.contacts[contact["id"]] = contact
        return contact

    def _create(self, properties: dict[str, str]) -> httpx.Response:
        if problem := self._invalid(properties):
            return self._reply(400, error_body(400, problem, "VALIDATION_ERROR"))
        if not any(properties.get(name) for name in NAMED_ON_CREATE):
            text = "A contact needs at least one of email, firstname or lastname."
            return self._reply(400, error_body(400, text, "VALIDATION_ERROR"))
        if existing := self._by_email(properties.get("email", "")):
            return self._conflict(existing)
        return self._reply(201, self._store(properties, None))

    def _conflict(self, existing: dict[str, Any]) -> httpx.Response:
        text = f"Contact already exists. Existing ID: {existing['id']}"
        return self._reply(409, error_body(409, text, "CONFLICT"))

    def _patch(self, request: httpx.Request, properties: dict[str, str]) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[1]
        if request.url.params.get("idProperty") == "email":
            contact = self._by_email(key)
        else:
            contact = self.contacts.get(key)
        if contact is None:
            return self._reply(404, error_body(404, "resource not found", "OBJECT_NOT_FOUND"))
        if problem := self._invalid(properties):
            return self._reply(400, error_body(400, problem, "VALIDATION_ERROR"))
        # Email is the unique key: taking another contact's email is a 409 as on create.
        other = self._by_email(properties.get("email", ""))
        if other is not None and other is not contact:
            return self._conflict(other)
        return self._reply(200, self._store(properties, contact))

    def _upsert(self, inputs: list[dict[str, Any]]) -> httpx.Response:
        ids = [item["id"] for item in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            text = f"Duplicate IDs found in batch input: [{', '.join(dupes)}]. IDs must be unique"
            return self._reply(
                400, error_body(400, text, "VALIDATION_ERROR", context={"ids": dupes})
            )
        results, errors = [], []
        for item in inputs:
            props = {"email": item["id"], **item["properties"]}
            if problem := self._invalid(props):
                if self.batch_invalid_mode == "400":
                    return self._reply(400, error_body(400, problem, "VALIDATION_ERROR"))
                trace = {"objectWriteTraceId": [item.get("objectWriteTraceId", "")]}
                errors.append(error_body(400, problem, "VALIDATION_ERROR", context=trace))
                continue
            existing = self._by_email(item["id"])
            contact = self._store(props, existing)
            results.append(
                contact
                | {"new": existing is None, "objectWriteTraceId": item.get("objectWriteTraceId")}
            )
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        body |= {"startedAt": _NOW, "completedAt": _NOW}
        if errors:
            return self._reply(207, body | {"numErrors": len(errors), "errors": errors})
        return self._reply(200, body)


@dataclass
class Observed:
    """What the client reported to its observer: (operation, http status, seconds)."""

    events: list[tuple[str, int | None, float]] = field(default_factory=list)

    def __call__(self, operation: str, status: int | None, seconds: float) -> None:
        self.events.append((operation, status, seconds))

    @property
    def statuses(self) -> list[tuple[str, int | None]]:
        """Return (operation, status) pairs, without the timings."""
        return [(op, status) for op, status, _ in self.events]


def sent(router: respx.MockRouter, index: int = -1) -> httpx.Request:
    """Return the request a respx router received at `index`."""
    request: httpx.Request = router.calls[index].request
    return request
