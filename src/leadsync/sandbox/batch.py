"""Batch endpoints: upsert by email (200/207/400 as configured) and read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.clock import iso
from leadsync.sandbox.inputs import batch_inputs, id_property, input_id, read_object
from leadsync.sandbox.properties import (
    PropertyError,
    check_email,
    check_properties,
    coerce_properties,
    input_error,
    validation_message,
)
from leadsync.sandbox.replies import bad_request, batch_error, json_response
from leadsync.sandbox.settings import CONTACTS_PATH, SandboxConfig
from leadsync.sandbox.state import SandboxState
from leadsync.sandbox.store import DEFAULT_READ_PROPERTIES, ContactExists, ContactStore

BATCH = CONTACTS_PATH + "/batch"
MISSING_MESSAGE = (
    "Could not get some CONTACT objects, they may be deleted or not exist. "
    "Check that ids are valid."
)


@dataclass(slots=True)
class UpsertInput:
    """One parsed upsert input; `key` is the lowercased email or the record id."""

    key: str
    by_email: bool
    properties: dict[str, str]
    trace_id: str | None
    errors: list[PropertyError]


def parse_upsert(item: dict[str, Any], *, config: SandboxConfig) -> UpsertInput:
    """Parse and validate one upsert input."""
    raw_id = input_id(item)
    by_email = id_property(item.get("idProperty")) == "email"
    props = coerce_properties(item.get("properties"))
    errors = check_properties(props, config=config)
    key = raw_id.strip().lower() if by_email else raw_id
    if by_email and (bad := check_email(key, config=config)) is not None and bad not in errors:
        errors.append(bad)
    trace = item.get("objectWriteTraceId")
    return UpsertInput(key, by_email, props, None if trace is None else str(trace), errors)


def duplicate_keys(inputs: list[UpsertInput]) -> list[str]:
    """Return the keys that appear more than once, in first-seen order."""
    seen: set[str] = set()
    dups: dict[str, None] = {}
    for item in inputs:
        if item.key in seen:
            dups[item.key] = None
        seen.add(item.key)
    return list(dups)


def apply_upsert(
    item: UpsertInput, *, store: ContactStore, now: float
) -> tuple[bool, dict[str, Any]]:
    """Write one valid input; return (True, result) or (False, StandardError)."""
    try:
        if item.by_email:
            contact, new = store.upsert_by_email(item.key, item.properties, now=now)
        else:
            found = store.get(item.key)
            if found is None:
                return False, _input_failure(item, "OBJECT_NOT_FOUND", MISSING_MESSAGE)
            contact, new = store.update(found, item.properties, now=now), False
    except ContactExists as exc:
        message = f"Contact already exists. Existing ID: {exc.existing_id}"
        return False, _input_failure(item, "CONFLICT", message)
    result = contact.to_public()
    result["new"] = new
    if item.trace_id is not None:
        result["objectWriteTraceId"] = item.trace_id
    return True, result


def _input_failure(item: UpsertInput, category: str, message: str) -> dict[str, Any]:
    return batch_error(category, message, ids=[item.key], trace_id=item.trace_id)


def batch_router(*, state: SandboxState) -> APIRouter:
    """Build the batch upsert and batch read routes over `state`."""
    router = APIRouter()

    @router.post(BATCH + "/upsert")
    async def upsert(request: Request) -> Response:
        """Create or update up to 100 contacts keyed by email."""
        started = state.clock()
        config = state.config
        body = await read_object(request)
        inputs = [parse_upsert(item, config=config) for item in batch_inputs(body)]
        dups = duplicate_keys(inputs)
        if dups:
            message = f"Duplicate IDs found in batch input: [{', '.join(dups)}]. IDs must be unique"
            return bad_request(message, context={"ids": dups})
        invalid = [item for item in inputs if item.errors]
        if invalid and config.invalid_batch == "whole":
            return bad_request(validation_message([e for item in invalid for e in item.errors]))
        errors = [
            input_error(item.errors, input_id=item.key, trace_id=item.trace_id) for item in invalid
        ]
        results: list[dict[str, Any]] = []
        injected = state.input_errors
        for item in inputs:
            if item.errors:
                continue
            if injected and item.by_email and (rule := injected.take(item.key)) is not None:
                # An injected per-input error (POST /_sandbox/input-errors): not applied.
                errors.append(rule.batch_error(trace_id=item.trace_id))
                continue
            ok, outcome = apply_upsert(item, store=state.store, now=started)
            (results if ok else errors).append(outcome)
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(started),
            "completedAt": iso(state.clock()),
        }
        if errors:
            payload["numErrors"] = len(errors)
            payload["errors"] = errors
        return json_response(payload, status=207 if errors else 200)

    @router.post(BATCH + "/read")
    async def read(request: Request) -> Response:
        """Read up to 100 contacts by id, or by email with idProperty=email."""
        started = state.clock()
        body = await read_object(request)
        by_email = id_property(body.get("idProperty")) == "email"
        names = body.get("properties") or DEFAULT_READ_PROPERTIES
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in batch_inputs(body):
            key = input_id(item)
            contact = state.store.get_by_email(key) if by_email else state.store.get(key)
            if contact is None:
                missing.append(key)
            else:
                results.append(contact.to_public(names=names))
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(started),
            "completedAt": iso(state.clock()),
        }
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [batch_error("OBJECT_NOT_FOUND", MISSING_MESSAGE, ids=missing)]
        return json_response(payload, status=207 if missing else 200)

    return router
