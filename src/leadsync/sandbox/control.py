"""The control API under /_sandbox/: inspect contacts and stats, reset, reconfigure, inject
canned answers (no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.errors import bad_request, json_response
from leadsync.sandbox.inject import InjectedResponse
from leadsync.sandbox.inputs import read_object
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
        snapshot["hangs_active"] = state.hangs.active
        snapshot["injections_pending"] = len(state.injections)
        return json_response(snapshot)

    @router.post("/reset")
    async def reset() -> Response:
        """Forget contacts, stats and rate-limit history; replay faults from the seed."""
        state.reset()
        return json_response({"status": "reset"})

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
        """Answer the next `times` (default 1) CRM requests with this response, test-only.

        Body: `{"status": 503, "json": {...} | "content": "text", "headers": {...}, "times": 1}`.
        The answers replace auth, limits and faults, and change no contact.
        """
        raw = await read_object(request)
        try:
            item = InjectedResponse.model_validate(raw)
        except ValidationError as exc:
            return bad_request(f"Invalid injected response: {_problems(exc)}")
        state.injections.push(item)
        return json_response({"pending": len(state.injections)}, status=201)

    @router.delete("/inject")
    async def clear_injections() -> Response:
        """Drop every injected answer not used yet."""
        state.injections.clear()
        return json_response({"pending": 0})

    return router


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
