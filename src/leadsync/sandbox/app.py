"""create_sandbox_app: a FastAPI app that behaves like HubSpot's CRM v3 contacts API."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.batch import batch_router
from leadsync.sandbox.clock import Clock
from leadsync.sandbox.control import control_router
from leadsync.sandbox.gdpr import gdpr_router
from leadsync.sandbox.middleware import SandboxGate
from leadsync.sandbox.properties import BadInput
from leadsync.sandbox.replies import bad_request, error_response
from leadsync.sandbox.routes import contacts_router
from leadsync.sandbox.search import search_router
from leadsync.sandbox.settings import SandboxConfig
from leadsync.sandbox.state import SandboxState


def create_sandbox_app(
    config: SandboxConfig | None = None, *, clock: Clock | None = None
) -> FastAPI:
    """Build the sandbox app; its state is `sandbox_state(app)` (also `app.state.sandbox`)."""
    state = SandboxState(config=config or SandboxConfig(), clock=clock or time.time)
    app = FastAPI(
        title="leadsync HubSpot sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    # Search, batch and gdpr-delete paths are registered before /{contact_id} so they are not
    # read as ids.
    app.include_router(search_router(state=state))
    app.include_router(batch_router(state=state))
    app.include_router(gdpr_router(state=state))
    app.include_router(contacts_router(state=state))
    app.include_router(control_router(state=state))
    app.add_middleware(SandboxGate, state=state)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> Response:
        return bad_request(str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_params(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(str(err.get("msg")) for err in exc.errors())
        return bad_request(f"Invalid input: {problems}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        category = "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR"
        return error_response(exc.status_code, category, str(exc.detail))

    return app
