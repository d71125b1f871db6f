"""Reading request bodies and parameters the way HubSpot does, refusing what it refuses."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from leadsync.sandbox.peek import PARSED_BODY
from leadsync.sandbox.properties import BadInput
from leadsync.sandbox.settings import MAX_BATCH_INPUTS


async def read_object(request: Request) -> dict[str, Any]:
    """Return the JSON object in the request body, or raise BadInput."""
    parsed = request.scope.get(PARSED_BODY)
    if parsed is not None:
        # The gate already parsed it (to see which emails the request touches).
        assert isinstance(parsed, dict)
        return parsed
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line, column = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        raise BadInput(f"Invalid input JSON on line {line}, column {column}: {exc}") from None
    if not isinstance(body, dict):
        raise BadInput("Invalid input JSON: expected an object")
    return body


def batch_inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return `inputs` of a batch body, at most 100 objects, or raise BadInput."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
        raise BadInput("Invalid input JSON: inputs must be a list of objects")
    if len(inputs) > MAX_BATCH_INPUTS:
        raise BadInput(
            f"Batch input limit exceeded: {len(inputs)} inputs were sent; "
            f"the limit is {MAX_BATCH_INPUTS}"
        )
    return inputs


def input_id(item: dict[str, Any]) -> str:
    """Return an input's `id` as a string, or raise BadInput."""
    value = item.get("id")
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise BadInput("Invalid input JSON: every input needs a string id")
    return str(value)


def id_property(value: object) -> str | None:
    """Return `email` or None (the record id) for an idProperty, or raise BadInput."""
    if value in (None, "", "hs_object_id"):
        return None
    if value == "email":
        return "email"
    raise BadInput(f"Property {value!r} is not a unique identifier property for contacts")


def requested_names(values: list[str] | None) -> list[str] | None:
    """Flatten `properties` given repeated or comma-separated; None when none were asked."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def int_param(raw: str | None, *, name: str, default: int, maximum: int) -> int:
    """Parse a positive integer query parameter, clamped to `maximum`."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be an integer") from None
    if value < 1:
        raise BadInput(f"{name} must be positive")
    return min(value, maximum)
