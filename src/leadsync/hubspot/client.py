"""The HubSpot CRM v3 contacts client: one pooled httpx connection pool, classified errors."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from leadsync import __version__
from leadsync.config import Settings
from leadsync.hubspot.errors import (
    AuthError,
    HubSpotError,
    TransientError,
    error_from_exception,
    error_from_response,
    truncate_error,
)
from leadsync.hubspot.models import (
    BatchInputError,
    BatchUpsertResult,
    Contact,
    RateLimitInfo,
    UpsertedContact,
    UpsertInput,
)
from leadsync.redact import scrub

CONTACTS_PATH = "/crm/v3/objects/contacts"
MAX_BATCH_INPUTS = 100
# Default contact properties of every HubSpot account that a lead can fill (docs/hubspot.md,
# "Contact properties"); a search asks for these back.
DEFAULT_CONTACT_PROPERTIES = ("email", "firstname", "lastname", "phone", "company", "message")
SEARCH_PROPERTIES = DEFAULT_CONTACT_PROPERTIES

TokenProvider = Callable[[], str | None]
Observer = Callable[[str, int | None, float], None]
SecretsProvider = Callable[[], Iterable[str | None]]

_M = TypeVar("_M", bound=Contact)

# Only visible ASCII can go into a header; anything else would make httpx raise an error whose
# attributes carry the token itself.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: dict[str, Any]
    rate_limit: RateLimitInfo
    secrets: list[str | None]

    def clean(self, text: str) -> str:
        return truncate_error(scrub(text, secrets=self.secrets))

    def invalid(self, what: str) -> TransientError:
        # A 2xx we cannot read may still have been applied; upserts and 409 handling make a
        # retry safe, so it is transient rather than the lead's fault.
        return TransientError(
            f"HTTP {self.status} response: {what}",
            reason="invalid_response",
            http_status=self.status,
            rate_limit=self.rate_limit,
        )

    def parse(self, model: type[_M], data: object) -> _M:
        where = "top level"
        if isinstance(data, dict):
            try:
                return model.model_validate({**data, "rate_limit": self.rate_limit})
            except pydantic.ValidationError as exc:
                # pydantic's text quotes input values (PII), so only the field paths are kept.
                where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
        raise self.invalid(f"unexpected shape at {where}")


class HubSpotClient:
    """Async client for HubSpot contacts; owns one pooled httpx.AsyncClient per process."""

    def __init__(
        self,
        *,
        base_url: str,
        token_provider: TokenProvider,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        total_timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: Observer | None = None,
        secrets: SecretsProvider | Sequence[str] = (),
    ) -> None:
        self._token_provider = token_provider
        self._secrets = secrets
        self._observer = observer
        self._total_timeout = total_timeout
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            headers={"User-Agent": f"leadsync/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: Observer | None = None,
    ) -> HubSpotClient:
        """Build a client from Settings; the token is re-read on every request."""
        return cls(
            base_url=settings.hubspot_base_url,
            token_provider=settings.read_hubspot_token,
            connect_timeout=settings.hubspot_connect_timeout_seconds,
            read_timeout=settings.hubspot_read_timeout_seconds,
            total_timeout=settings.hubspot_total_timeout_seconds,
            transport=transport,
            observer=observer,
            secrets=settings.secrets,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def create_contact(self, *, properties: Mapping[str, str]) -> Contact:
        """Create a contact; a 409 raises ConflictError carrying the existing id."""
        reply = await self._request(
            operation="create",
            method="POST",
            path=CONTACTS_PATH,
            body={"properties": dict(properties)},
        )
        return reply.parse(Contact, reply.body)

    async def update_contact(self, *, contact_id: str, properties: Mapping[str, str]) -> Contact:
        """Update the contact with this HubSpot id."""
        return await self._patch("update", key=contact_id, params=None, properties=properties)

    async def update_contact_by_email(
        self, *, email: str, properties: Mapping[str, str]
    ) -> Contact:
        """Update the contact whose email is `email` (idProperty=email)."""
        key = email.strip().lower()
        params = {"idProperty": "email"}
        return await self._patch("update_by_email", key=key, params=params, properties=properties)

    async def search_contact_by_email(
        self, *, email: str, properties: Sequence[str] = SEARCH_PROPERTIES
    ) -> Contact | None:
        """Return the contact with this email, or None (search lags creates by seconds)."""
        flt = {"propertyName": "email", "operator": "EQ", "value": email.strip().lower()}
        # Every field the spec marks required is sent, so strict servers accept the request.
        body = {"filterGroups": [{"filters": [flt]}], "properties": list(properties)}
        body |= {"sorts": [], "limit": 1, "after": "0"}
        reply = await self._request(
            operation="search", method="POST", path=f"{CONTACTS_PATH}/search", body=body
        )
        results = reply.body.get("results")
        if not isinstance(results, list):
            raise reply.invalid("no results list")
        return reply.parse(Contact, results[0]) if results else None

    async def batch_upsert(self, *, inputs: Sequence[UpsertInput]) -> BatchUpsertResult:
        """Upsert up to 100 contacts by email in one call; per-input failures come back in 207."""
        if not 1 <= len(inputs) <= MAX_BATCH_INPUTS:
            raise ValueError(f"a batch takes 1 to {MAX_BATCH_INPUTS} inputs, got {len(inputs)}")
        ids = [item.id for item in inputs]
        if len(set(ids)) != len(ids):
            # HubSpot rejects the whole batch for one duplicate, so the caller must dedupe first.
            raise ValueError("duplicate emails in one batch; dedupe before calling batch_upsert")
        reply = await self._request(
            operation="batch_upsert",
            method="POST",
            path=f"{CONTACTS_PATH}/batch/upsert",
            body={"inputs": [item.to_json() for item in inputs]},
        )
        raw_results = reply.body.get("results")
        raw_errors = reply.body.get("errors") or []
        if not isinstance(raw_results, list) or not isinstance(raw_errors, list):
            raise reply.invalid("no results list")
        status = reply.body.get("status")
        return BatchUpsertResult(
            http_status=reply.status,
            results=[reply.parse(UpsertedContact, r) for r in raw_results],
            errors=[BatchInputError.from_json(e, clean=reply.clean) for e in raw_errors],
            status=status if isinstance(status, str) else None,
            rate_limit=reply.rate_limit,
        )

    async def gdpr_delete(self, *, email: str) -> RateLimitInfo:
        """Permanently delete the contact with this email (HubSpot's GDPR delete).

        HubSpot answers 204 whether or not a contact had the email, and blocklists the email
        either way; the blocklist does not stop a later API write from re-creating the contact
        (docs/hubspot.md, section 9). Repeating the call is harmless. Errors are classified as
        for every call; the email is scrubbed from their texts, as it is the personal data
        being erased, and only the operation name `gdpr_delete` reaches the observer.
        """
        key = email.strip().lower()
        if not key:
            raise ValueError("an email is required")
        reply = await self._request(
            operation="gdpr_delete",
            method="POST",
            path=f"{CONTACTS_PATH}/gdpr-delete",
            body={"objectId": key, "idProperty": "email"},
            redact=(key,),
            no_content=True,
        )
        return reply.rate_limit

    async def probe(self) -> RateLimitInfo:
        """Make the cheapest authenticated call; raises AuthError while the token is bad."""
        params = {"limit": "1"}
        reply = await self._request(
            operation="probe", method="GET", path=CONTACTS_PATH, params=params
        )
        return reply.rate_limit

    async def _patch(
        self,
        operation: str,
        *,
        key: str,
        params: Mapping[str, str] | None,
        properties: Mapping[str, str],
    ) -> Contact:
        if not key:
            raise ValueError("a contact id or email is required")
        # Quoted with safe="" so an email's "@" and "+" arrive as HubSpot expects (a%40x.com).
        path = f"{CONTACTS_PATH}/{quote(key, safe='')}"
        body = {"properties": dict(properties)}
        reply = await self._request(
            operation=operation, method="PATCH", path=path, params=params, body=body
        )
        return reply.parse(Contact, reply.body)

    def _credentials(self) -> tuple[str, list[str | None]]:
        # Asked on every request, so a rotated HUBSPOT_TOKEN_FILE takes effect at once.
        token = (self._token_provider() or "").strip()
        extra = self._secrets() if callable(self._secrets) else self._secrets
        secrets = [token, *extra]
        if not token:
            raise AuthError("no HubSpot token configured", category="MISSING_TOKEN")
        if not _TOKEN_RE.fullmatch(token):
            raise AuthError(
                "HubSpot token has characters not allowed in an HTTP header",
                category="INVALID_TOKEN",
                secrets=secrets,
            )
        return token, secrets

    async def _request(
        self,
        *,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        redact: Sequence[str] = (),
        no_content: bool = False,
    ) -> _Reply:
        """Send one request; `redact` lists texts scrubbed from errors like secrets, and
        `no_content` expects HubSpot's 204 (any other 2xx is an unreadable answer)."""
        token, secrets = self._credentials()
        secrets = [*secrets, *redact]
        status: int | None = None
        failure: HubSpotError | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._total_timeout):
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
            status = response.status_code
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL) as exc:
            failure = error_from_exception(
                exc, operation=operation, total_timeout=self._total_timeout, secrets=secrets
            )
        finally:
            self._observe(operation, status, time.perf_counter() - started)
        # Raised outside the except blocks so no httpx exception rides along as __context__.
        if failure is not None:
            raise failure
        rate_limit = RateLimitInfo.from_headers(response.headers)
        if not response.is_success:
            raise error_from_response(
                status=response.status_code,
                content=response.content,
                headers=response.headers,
                secrets=secrets,
            )
        if no_content:
            reply = _Reply(response.status_code, {}, rate_limit, secrets)
            if response.status_code != 204:
                # Not what HubSpot documents: maybe not HubSpot at all (a wrong base URL), so
                # the call is not taken as done; retrying it is harmless.
                raise reply.invalid("expected 204 No Content")
            return reply
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise _Reply(response.status_code, {}, rate_limit, secrets).invalid("not JSON")
        return _Reply(response.status_code, parsed, rate_limit, secrets)

    def _observe(self, operation: str, status: int | None, seconds: float) -> None:
        if self._observer is not None:
            # Metrics must never break a sync, so an observer failure is swallowed.
            with contextlib.suppress(Exception):
                self._observer(operation, status, seconds)
