"""The control API under /_sandbox/: inspect contacts, stats, the request log, GDPR deletes
and the blocklist, reset, reconfigure, inject answers, faults and per-input errors (no auth)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.inject import InjectedResponse
from leadsync.sandbox.inputerrors import InputError
from leadsync.sandbox.inputs import read_object
from leadsync.sandbox.replies import bad_request, json_response
from leadsync.sandbox.state import SandboxState

PREFIX = "/_sandbox"


def control_router(*, state: SandboxState) -> APIRouter:
    """Build the control routes over `state`."""
    router = APIRouter(prefix=PREFIX)

    @router.get("/contacts")
    async def contacts() -> Response:
        """Return every contact with its id and all its properties."""
        results = [contact.to_public() for contact in state.store]
        return json_response({"total": len(results), "results": results})

    @router.get("/stats")
    async def stats() -> Response:
        """Return request counts by endpoint and status, 429s, faults and peak window use."""
        snapshot: dict[str, Any] = state.stats.snapshot()
        snapshot["contacts"] = len(state.store)
        snapshot["gdpr_deletions"] = len(state.gdpr_deletions)
        snapshot["blocklisted"] = len(state.blocklist)
        snapshot["hangs_active"] = state.hangs.active
        snapshot["injections_pending"] = len(state.injections)
        snapshot["input_errors_pending"] = len(state.input_errors)
        return json_response(snapshot)

    @router.post("/reset")
    async def reset() -> Response:
        """Forget contacts, GDPR deletes, the blocklist, stats, the request log, rate-limit
        history and pending injections and input errors; replay faults from the seed."""
        state.reset()
        return json_response({"status": "reset"})

    @router.get("/gdpr-deletions")
    async def gdpr_deletions() -> Response:
        """Every gdpr-delete applied, oldest first, as a JSON list.

        Each: `{"at", "objectId", "idProperty", "deleted_contact_id", "blocklisted"}`; `at`
        is on the sandbox's clock, `objectId` as sent, `idProperty` `"email"` or null (by id).
        """
        return json_response(state.gdpr_deletions.listed())

    @router.get("/blocklist")
    async def blocklist() -> Response:
        """Every blocklisted email in the order added, with the API write that re-created it,
        as a JSON list.

        Each: `{"email", "added_at", "recreated_at", "recreated_contact_id"}`; the last two are
        null until a create, upsert or update gives a contact that email again.
        """
        return json_response(state.blocklist.listed())

    @router.get("/config")
    async def get_config() -> Response:
        """Return the current configuration."""
        return json_response(state.config.model_dump(mode="json"))

    @router.patch("/config")
    async def patch_config(request: Request) -> Response:
        """Change any knob; `add_tokens`/`revoke_tokens` edit the accepted tokens."""
        changes = await read_object(request)
        try:
            config = state.update_config(changes)
        except ValidationError as exc:
            return bad_request(f"Invalid sandbox config: {_problems(exc)}")
        return json_response(config.model_dump(mode="json"))

    @router.post("/inject")
    async def inject(request: Request) -> Response:
        """Decide what happens to the next `times` (default 1) matching CRM requests, test-only.

        Body: `{"action": "respond" | "drop" | "hang" | "delay", "endpoints": [...],
        "times": 1}` plus, for respond (the default), `"status": 503, "json": {...} |
        "content": "text", "headers": {...}`; for delay, `"delay_ms": 500`; for hang,
        optionally `"hang_seconds": 5`. An injection replaces auth, limits and faults.
        """
        raw = await read_object(request)
        try:
            item = InjectedResponse.model_validate(raw)
        except ValidationError as exc:
            return bad_request(f"Invalid injection: {_problems(exc)}")
        state.injections.push(item)
        return json_response({"pending": len(state.injections)}, status=201)

    @router.delete("/inject")
    async def clear_injections() -> Response:
        """Drop every injection not used yet."""
        state.injections.clear()
        return json_response({"pending": 0})

    @router.post("/input-errors")
    async def add_input_error(request: Request) -> Response:
        """Fail the next `times` (default 1) writes of one email, test-only.

        Body: `{"email": "a@x.com", "status": "500", "category": "INTERNAL_ERROR",
        "message": "optional", "times": 1}`. In a batch upsert the input is a per-input error
        of a 207 and the other inputs land; a single create/update gets HTTP `status`.
        """
        raw = await read_object(request)
        try:
            rule = InputError.model_validate(raw)
        except ValidationError as exc:
            return bad_request(f"Invalid input error: {_problems(exc)}")
        state.input_errors.push(rule)
        return json_response({"pending": len(state.input_errors)}, status=201)

    @router.get("/input-errors")
    async def list_input_errors() -> Response:
        """List the pending input errors, each with the writes it still fails (`times`)."""
        listed = state.input_errors.listed()
        return json_response({"pending": sum(e["times"] for e in listed), "input_errors": listed})

    @router.delete("/input-errors")
    async def clear_input_errors() -> Response:
        """Drop every pending input error."""
        state.input_errors.clear()
        return json_response({"pending": 0})

    @router.get("/requests")
    async def requests(since: str | None = None) -> Response:
        """The last CRM requests, oldest first; `since` keeps those that arrived at or after it.

        Each: `{"at", "done_at", "endpoint", "status", "emails", "retry_after", "policy"}`;
        `done_at` and `status` are null while the request is in progress.
        """
        at = None
        if since is not None:
            try:
                at = float(since)
            except ValueError:
                at = math.nan
            if not math.isfinite(at):
                return bad_request(f"since must be a number of seconds since the epoch: {since!r}")
        return json_response({"requests": state.requests.since(at)})

    return router


def _problems(exc: ValidationError) -> str:
    return "; ".join(_problem(err["loc"], err["msg"]) for err in exc.errors())


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    return f"{'.'.join(str(p) for p in loc)}: {message}" if loc else message
