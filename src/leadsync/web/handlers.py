"""Every error the app answers, in the one shape of web/responses.py: validation, HTTP
errors, an unavailable database (503) and bugs (500, the traceback in the log only)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadsync.logging import get_logger
from leadsync.store.db import DatabaseUnavailable
from leadsync.web.responses import ErrorResponse

log = get_logger(__name__)

# What pydantic says when the body is JSON but not an object ([], "text", 42, null).
_NOT_AN_OBJECT = {"model_attributes_type", "model_type", "dict_type"}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        field = _field_name(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            # strictjson.loads() wrote the reason as a sentence.
            field = "body"
            message = str((err.get("ctx") or {}).get("error") or "the body is not valid JSON")
        elif field == "body" and err.get("type") in _NOT_AN_OBJECT:
            message = "the body must be a JSON object"
        errors.append({"field": field, "message": message})
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return JSONResponse(
        ErrorResponse.of(f"invalid request: {fields}", errors),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        ErrorResponse.of(str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


# The database answering nothing (down, refusing, unreachable) is not the client's fault nor a
# bug: 503 in the documented shape, and the cause in the log, not in the answer.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, OSError, DatabaseUnavailable)


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("db.unavailable", path=request.url.path, error_type=type(exc).__name__)
    return JSONResponse(
        ErrorResponse.of("the database is unavailable; try again later"),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _on_unexpected_error(_request: Request, _exc: Exception) -> JSONResponse:
    # A bug: the traceback is logged by the server; the client gets the documented shape.
    return JSONResponse(
        ErrorResponse.of("internal error"), status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the documented shape."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected_error)
