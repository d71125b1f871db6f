"""The one error shape every route answers with, and its declaration in /openapi.json.

Every 4xx and 5xx body the service sends is `{"detail": "<a sentence>", "errors": [...]}`;
`errors` lists `{"field", "message"}` per invalid field of a 422 and is empty otherwise.
`responses(...)` declares, per route, each status it can answer with that shape, so the spec
and the server say the same thing (docs/api.md, "Errors").
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field


class ErrorItem(BaseModel):
    """One problem with one field of the request."""

    field: str = Field(
        description="Where: a body field (`email`, `lead_ids.0`), a query or path parameter "
        "(`limit`, `lead_id`), or `body` for the body as a whole."
    )
    message: str = Field(description="What is wrong, in a sentence a person understands.")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a sentence to show, and per-field details when there are any."""

    # `errors` is always sent, so the response schema marks it required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    detail: str = Field(description="What went wrong, in one sentence.")
    errors: list[ErrorItem] = Field(
        default_factory=list, description="One entry per invalid field (422); else empty."
    )

    @classmethod
    def of(cls, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Return the JSON body for a detail and optional field errors."""
        return cls(detail=detail, errors=[ErrorItem(**e) for e in errors or []]).model_dump()


WWW_AUTHENTICATE: Final = {
    "WWW-Authenticate": {
        "description": "Always `Bearer`.",
        "schema": {"type": "string", "enum": ["Bearer"]},
    }
}

DESCRIPTIONS: Final[dict[int, str]] = {
    400: "The Idempotency-Key header is invalid (1 to 255 printable ASCII characters, no "
    "spaces) or was sent more than once.",
    401: "Missing or wrong `Authorization: Bearer <LEADSYNC_INTERNAL_TOKEN>`.",
    404: "No such lead (also any path that is not a route, such as a non-numeric id).",
    409: "The Idempotency-Key was already used with a different body.",
    413: "The body is larger than LEADSYNC_MAX_BODY_BYTES (64 KiB by default).",
    422: "The request is invalid: the body is not a JSON object with unique keys, or a "
    "field or parameter is missing, of the wrong type or out of range; `errors` names each.",
    431: "The request's headers are larger than LEADSYNC_MAX_HEADER_BYTES (16 KiB by "
    "default) in all, or one header line is.",
    503: "The database is unavailable (retry later); on `/internal/*` also: internal routes "
    "are disabled until LEADSYNC_INTERNAL_TOKEN is set.",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Declare each error status a route can answer, all with the ErrorResponse shape."""
    declared: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": DESCRIPTIONS[code]}
        if code == 401:
            entry["headers"] = WWW_AUTHENTICATE
        declared[code] = entry
    return declared
