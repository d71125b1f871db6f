"""HubSpot's error bodies, byte for byte where HubSpot's own texts are known."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication "
    "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_COMPACT = (",", ":")


def dumps(body: object) -> bytes:
    """Serialise a body as compact JSON, as HubSpot sends it."""
    return json.dumps(body, separators=_COMPACT, ensure_ascii=False).encode()


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Build a JSON response without FastAPI's encoder (the batch path is hot)."""
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """Build HubSpot's error envelope: status, message, correlationId, category, extras."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return body


def error_response(status: int, category: str, message: str, **extra: Any) -> Response:
    """Build an error response with HubSpot's envelope."""
    return json_response(error_body(category, message, **extra), status=status)


def conflict(existing_id: str) -> Response:
    """The 409 HubSpot sends when the email already belongs to a contact."""
    return error_response(409, "CONFLICT", f"Contact already exists. Existing ID: {existing_id}")


def no_content() -> Response:
    """The 204 without a body HubSpot answers an applied gdpr-delete with."""
    return Response(status_code=204)


def not_found(object_id: str) -> Response:
    """The 404 for an unknown contact id or email."""
    return error_response(
        404, "OBJECT_NOT_FOUND", "resource not found", context={"id": [object_id]}
    )


def bad_request(message: str, **extra: Any) -> Response:
    """A 400 VALIDATION_ERROR with a free-form message."""
    return error_response(400, "VALIDATION_ERROR", message, **extra)


def rate_limited_body(policy: str) -> dict[str, Any]:
    """The 429 body for `policy` (TEN_SECONDLY_ROLLING, SECONDLY or DAILY)."""
    # HubSpot's 429 carries errorType and policyName; the spec's Error schema also
    # requires `category`, so the sandbox adds HubSpot's documented RATE_LIMITS category.
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "category": "RATE_LIMITS",
    }


def server_error_body(status: int) -> dict[str, Any]:
    """The body of an injected 5xx."""
    return error_body("INTERNAL_ERROR", f"Injected sandbox fault: HTTP {status}")


def unauthorized_body() -> dict[str, Any]:
    """The 401 body for a missing or unknown token."""
    return error_body("INVALID_AUTHENTICATION", AUTH_MESSAGE)


def batch_error(
    category: str,
    message: str,
    *,
    ids: list[str],
    trace_id: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the spec's StandardError for batch inputs, naming their ids and write trace id."""
    context = {"ids": ids}
    if trace_id is not None:
        # HubSpot keys a 207's per-input errors by the caller's objectWriteTraceId.
        context["objectWriteTraceId"] = [trace_id]
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": details or [],
        "links": {},
    }
