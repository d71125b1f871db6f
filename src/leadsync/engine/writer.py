"""One claimed batch of leads -> HubSpot calls -> one result per lead (the testable core)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from leadsync.engine.contact import lead_properties, property_map
from leadsync.engine.gate import Paused, ProbeDue
from leadsync.hubspot.client import HubSpotClient
from leadsync.hubspot.errors import (
    AuthError,
    ConflictError,
    HubSpotError,
    InputVerdict,
    PermanentError,
    RateLimitedError,
    TransientError,
    classify_input_error,
)
from leadsync.hubspot.models import RateLimitInfo, UpsertInput
from leadsync.store.queue import LeadSnapshot
from leadsync.store.tables import SyncOutcome


class ResultKind(StrEnum):
    """What happened to one lead in this round."""

    SYNCED = "synced"
    RETRY = "retry"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    AUTH_PAUSED = "auth_paused"
    RELEASED = "released"  # never sent: the gate paused first, or the worker is stopping

    @property
    def event(self) -> str:
        """The log event of a lead with this outcome (`sync.lead.<kind>`)."""
        return f"{LEAD_EVENT_PREFIX}{self.value}"


# The history records each kind under the same name (store/tables.py: SyncOutcome).
if not {kind.value for kind in ResultKind} <= {outcome.value for outcome in SyncOutcome}:
    raise RuntimeError("every ResultKind must be a SyncOutcome")  # pragma: no cover

# Every per-lead log line of the worker is `sync.lead.<kind>`.
LEAD_EVENT_PREFIX = "sync.lead."
# The outcomes that count as an attempt in the metrics: a released lead was never sent.
COUNTED_OUTCOMES = tuple(kind for kind in ResultKind if kind is not ResultKind.RELEASED)


@dataclass(frozen=True, slots=True)
class LeadResult:
    """The outcome of one lead, before the retry policy turns it into sync columns."""

    lead_id: int
    kind: ResultKind
    hubspot_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    retry_after_seconds: float | None = None


class Budget(Protocol):
    """The shared request budget and pause switch (sync.gate.Gate in production)."""

    async def acquire(self) -> None: ...

    async def observe(self, info: RateLimitInfo) -> None: ...

    async def pause_for_rate_limit(
        self,
        *,
        retry_after_seconds: float | None,
        interval_seconds: float | None,
        daily: bool,
        detail: str,
    ) -> object: ...

    async def pause_for_auth(self, *, detail: str) -> object: ...

    async def write_succeeded(self) -> None: ...


class Lease(Protocol):
    """The claim's lease: a call may start only for leads whose lease covers all of it, and
    is made inside the send fence (store/fence.py), which an erasure request waits for."""

    async def cover(self, lead_ids: Sequence[int]) -> set[int]:
        """Return the ids whose lease covers one whole call from now (renewing it if needed)."""
        ...

    def fence(self, lead_ids: Sequence[int]) -> contextlib.AbstractAsyncContextManager[set[int]]:
        """Hold the fence for one call; yield the ids that may still be sent."""
        ...


class _NoLease:
    async def cover(self, lead_ids: Sequence[int]) -> set[int]:
        return set(lead_ids)

    @contextlib.asynccontextmanager
    async def fence(self, lead_ids: Sequence[int]) -> AsyncIterator[set[int]]:
        yield set(lead_ids)


@dataclass(frozen=True, slots=True)
class _Group:
    """The leads of one email in a batch: one contact, one input, one shared outcome.

    `history`: the email's leads already SYNCED. Their values go into the write too, so the
    contact holds the newest non-empty value of every property across all of the email's
    leads, whatever order their writes took (docs/architecture.md, "Guarantees").
    """

    email: str
    leads: tuple[LeadSnapshot, ...]
    history: tuple[LeadSnapshot, ...] = ()

    def properties(self, mapping: Mapping[str, str]) -> dict[str, str]:
        merged: dict[str, str] = {}
        ordered = sorted((*self.history, *self.leads), key=lambda lead: lead.id)
        for lead in ordered:  # oldest first, so the newest non-empty value wins
            merged.update(lead_properties(lead.values, mapping=mapping))
        return merged

    @property
    def lead_ids(self) -> list[int]:
        return [lead.id for lead in self.leads]

    @property
    def trace_id(self) -> str:
        return str(self.leads[-1].id)

    def results(self, kind: ResultKind, **values: object) -> list[LeadResult]:
        return [LeadResult(lead.id, kind, **values) for lead in self.leads]  # type: ignore[arg-type]


@dataclass(slots=True)
class _Turns:
    """The request turns of one sync call; the worker may have paid for the first already.

    Each turn is also where the lease is checked: a group whose lease cannot cover the call
    (and cannot be renewed: another worker owns it now) is left out of the call.
    """

    budget: Budget
    prepaid: bool
    lease: Lease

    async def acquire(self, groups: list[_Group]) -> tuple[list[_Group], list[_Group]]:
        """Wait for the turn; return (groups to send, groups whose lease is lost)."""
        if self.prepaid:
            self.prepaid = False
        else:
            await self.budget.acquire()
        covered = await self.lease.cover([i for g in groups for i in g.lead_ids])
        return _split(groups, covered)

    @contextlib.asynccontextmanager
    async def fence(self, groups: list[_Group]) -> AsyncIterator[tuple[list[_Group], list[_Group]]]:
        """Hold the send fence around one call: yield (groups to send, groups refused)."""
        async with self.lease.fence([i for g in groups for i in g.lead_ids]) as sendable:
            yield _split(groups, sendable)


def _split(groups: list[_Group], ids: set[int]) -> tuple[list[_Group], list[_Group]]:
    """Split groups into those whose every lead is in `ids` and the rest."""
    kept: list[_Group] = []
    lost: list[_Group] = []
    for group in groups:
        (kept if all(i in ids for i in group.lead_ids) else lost).append(group)
    return kept, lost


def _names(text: str, email: str) -> bool:
    """Return whether an error text names this email as a whole token."""
    pattern = rf"(?<![\w.+@-]){re.escape(email)}(?![\w.@-])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def _key(email: str) -> str:
    return email.strip().lower()


def group_by_email(
    leads: Sequence[LeadSnapshot], history: Sequence[LeadSnapshot] = ()
) -> list[_Group]:
    """Group leads by (already lowercased) email, keeping id order inside each group."""
    groups: dict[str, list[LeadSnapshot]] = {}
    for lead in sorted(leads, key=lambda item: item.id):
        groups.setdefault(_key(lead.email), []).append(lead)
    past: dict[str, list[LeadSnapshot]] = {}
    for lead in history:
        if _key(lead.email) in groups:
            past.setdefault(_key(lead.email), []).append(lead)
    return [
        _Group(email, tuple(items), tuple(past.get(email, ()))) for email, items in groups.items()
    ]


def _released(groups: list[_Group]) -> list[LeadResult]:
    return [r for g in groups for r in g.results(ResultKind.RELEASED)]


class ContactWriter:
    """Sync claimed leads to HubSpot in batch mode (upsert) or single mode (create/409/patch)."""

    def __init__(
        self,
        *,
        client: HubSpotClient,
        budget: Budget,
        mode: Literal["batch", "single"] = "batch",
        extra_properties: dict[str, str] | None = None,
    ) -> None:
        self._client = client
        self._budget = budget
        self._mode = mode
        self._properties = property_map(extra=dict(extra_properties or {}))

    async def sync(
        self,
        leads: Sequence[LeadSnapshot],
        *,
        prepaid: bool = False,
        history: Sequence[LeadSnapshot] = (),
        lease: Lease | None = None,
    ) -> list[LeadResult]:
        """Send the leads to HubSpot and return one result per lead.

        `prepaid`: the caller already waited for the budget's slot of the first request.
        `history`: the SYNCED leads of the same emails (their values are sent too).
        `lease`: checked before every call; leads it no longer covers are not sent.
        """
        groups = group_by_email(leads, history)
        turns = _Turns(self._budget, prepaid, lease or _NoLease())
        if self._mode == "batch":
            return await self._upsert(groups, turns)
        results: list[LeadResult] = []
        for index, group in enumerate(groups):
            try:
                results += await self._single(group, turns)
            except (Paused, ProbeDue):
                results += _released(groups[index:])
                break
        return results

    async def _upsert(self, groups: list[_Group], turns: _Turns) -> list[LeadResult]:
        try:
            groups, lost = await turns.acquire(groups)
        except (Paused, ProbeDue):
            return _released(groups)
        if not groups:
            return _released(lost)
        try:
            async with turns.fence(groups) as (groups, fenced_out):
                lost += fenced_out
                if not groups:
                    return _released(lost)
                inputs = [
                    UpsertInput(g.email, g.properties(self._properties), g.trace_id) for g in groups
                ]
                reply = await self._client.batch_upsert(inputs=inputs)
        # The fence is released before any handling: a split batch takes it again per call.
        except PermanentError as exc:
            await self._budget.observe(exc.rate_limit)
            if len(groups) > 1:
                return _released(lost) + await self._isolate(groups, turns, str(exc))
            failed = groups[0].results(
                ResultKind.FAILED, http_status=exc.http_status, error=str(exc)
            )
            return _released(lost) + failed
        except ConflictError as exc:
            # An upsert by email conflicts only with a concurrent write of the same contact
            # (another integration, or HubSpot still applying an earlier one): retry later.
            await self._budget.observe(exc.rate_limit)
            values = {"http_status": exc.http_status, "error": str(exc)}
            return _released(lost) + [
                r for g in groups for r in g.results(ResultKind.RETRY, **values)
            ]
        except HubSpotError as exc:
            # One response, one pause: not one shared-gate write per email of the batch.
            return _released(lost) + await self._failure(groups, exc)
        await self._budget.observe(reply.rate_limit)
        await self._budget.write_succeeded()
        by_email = reply.by_email
        failed_inputs: dict[str, tuple[InputVerdict, int, str]] = {}
        for error in reply.errors:
            verdict, status = classify_input_error(error.status, error.category)
            text = f"{error.category or 'ERROR'}: {error.message}"
            for key in (*error.trace_ids, *error.ids):
                failed_inputs[key.strip().lower()] = (verdict, status, text)
        results: list[LeadResult] = _released(lost)
        for group in groups:
            contact = by_email.get(group.email)
            refused = failed_inputs.get(group.trace_id) or failed_inputs.get(group.email)
            if contact is not None:
                results += group.results(
                    ResultKind.SYNCED, hubspot_id=contact.id, http_status=reply.http_status
                )
            elif refused is not None:
                verdict, status, text = refused
                kind = ResultKind.RETRY if verdict is InputVerdict.TRANSIENT else ResultKind.FAILED
                results += group.results(kind, http_status=status, error=text)
            else:  # a 2xx that silently dropped an input: nothing says it was applied
                results += group.results(
                    ResultKind.RETRY,
                    http_status=reply.http_status,
                    error="HubSpot returned no result for this input",
                )
        return results

    async def _isolate(self, groups: list[_Group], turns: _Turns, error: str) -> list[LeadResult]:
        """Find the bad inputs of a batch HubSpot rejected whole; sync the others."""
        # HubSpot's message usually names the invalid emails: send the rest at once and each
        # suspect alone (a suspect that was fine then simply syncs), which costs 1 + s calls.
        suspects = [g for g in groups if _names(error, g.email)]
        if 0 < len(suspects) < len(groups):
            rest = [g for g in groups if g not in suspects]
            results = await self._upsert(rest, turns)
            for suspect in suspects:
                results += await self._upsert([suspect], turns)
            return results
        # Otherwise halve until each bad input stands alone: about k*log2(n) calls.
        middle = len(groups) // 2
        left = await self._upsert(groups[:middle], turns)
        return left + await self._upsert(groups[middle:], turns)

    async def _single(self, group: _Group, turns: _Turns) -> list[LeadResult]:
        properties = group.properties(self._properties)
        try:
            if not (await turns.acquire([group]))[0]:
                return group.results(ResultKind.RELEASED)
            try:
                async with turns.fence([group]) as (sendable, _):
                    if not sendable:
                        return group.results(ResultKind.RELEASED)
                    contact = await self._client.create_contact(properties=properties)
                status = 201
            except ConflictError as conflict:
                await self._budget.observe(conflict.rate_limit)
                contact_id = conflict.existing_id or await self._search(group.email)
                if contact_id is None:  # search lags creates by seconds: try again later
                    return group.results(
                        ResultKind.RETRY, http_status=409, error=f"{conflict} (id not found yet)"
                    )
                if not (await turns.acquire([group]))[0]:
                    return group.results(ResultKind.RELEASED)
                async with turns.fence([group]) as (sendable, _):
                    if not sendable:
                        return group.results(ResultKind.RELEASED)
                    contact = await self._client.update_contact(
                        contact_id=contact_id, properties=properties
                    )
                status = 200
        except (Paused, ProbeDue):
            raise
        except HubSpotError as exc:
            return await self._failure([group], exc)
        await self._budget.observe(contact.rate_limit)
        await self._budget.write_succeeded()
        return group.results(ResultKind.SYNCED, hubspot_id=contact.id, http_status=status)

    async def _search(self, email: str) -> str | None:
        # Search has its own 5/s limit and does not count toward the 10 s window (docs/hubspot.md):
        # its 429 must not pause the shared budget; the lead simply retries later.
        try:
            found = await self._client.search_contact_by_email(email=email)
        except RateLimitedError:
            return None
        return found.id if found is not None else None

    async def _failure(self, groups: list[_Group], exc: HubSpotError) -> list[LeadResult]:
        await self._budget.observe(exc.rate_limit)
        text = str(exc)
        values: dict[str, object] = {"http_status": exc.http_status, "error": text}
        if isinstance(exc, RateLimitedError):
            await self._budget.pause_for_rate_limit(
                retry_after_seconds=exc.retry_after_seconds,
                interval_seconds=exc.interval_seconds,
                daily=exc.is_daily,
                detail=text,
            )
            kind = ResultKind.RATE_LIMITED
            values |= {"http_status": 429, "retry_after_seconds": exc.retry_after_seconds}
        elif isinstance(exc, AuthError):
            await self._budget.pause_for_auth(detail=text)
            kind = ResultKind.AUTH_PAUSED
        elif isinstance(exc, TransientError):
            wait = max(exc.retry_after_seconds or 0.0, exc.min_wait_seconds or 0.0) or None
            kind = ResultKind.RETRY
            values["retry_after_seconds"] = wait
        else:
            kind = ResultKind.FAILED
        return [r for group in groups for r in group.results(kind, **values)]
