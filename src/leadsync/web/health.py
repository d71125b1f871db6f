"""Probes and metrics: `/healthz` (the process answers), `/readyz` (database reachable and
at head) and `/metrics` (Prometheus text)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from leadsync.usecases.health import readiness
from leadsync.web.responses import ErrorResponse, responses

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """The database is reachable and its schema is at head."""

    status: Literal["ready"]


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Every metric of this process, in Prometheus' text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/healthz",
    operation_id="getHealth",
    response_model=Health,
    responses=responses(431),
    summary="The process is alive",
)
async def healthz() -> Health:
    """Answer as long as the process runs."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="getReadiness",
    response_model=Readiness,
    summary="Database reachable and schema at head",
    responses={
        **responses(431),
        503: {
            "model": ErrorResponse,
            "description": "The database is unreachable, or its schema is not at head "
            "(the detail says which, and what to run).",
        },
    },
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    """Answer 200 when the database is reachable and at head, else 503 with the reason."""
    reason = await readiness(request.app.state.ctx.engine)
    if reason is not None:
        return JSONResponse(ErrorResponse.of(reason), status_code=503)
    return Readiness(status="ready")
