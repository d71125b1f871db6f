"""The published OpenAPI document, with integral bounds written as exact integers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from leadsync.limits import MAX_ID

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# FastAPI's OpenAPI model types bounds as floats, and 2**63 - 1 is not a float: it would be
# published as 9.223372036854776e18, which is 2**63, a value the server refuses.
_EXACT = {float(MAX_ID): MAX_ID}


def _exact_bounds(node: Any) -> None:
    """Put integral bounds back as exact integers, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = _EXACT.get(value, int(value))
            else:
                _exact_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _exact_bounds(item)


def with_exact_bounds(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Return an `openapi()` for `app` that publishes exact integral bounds."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()  # cached by FastAPI; fixing it again is a no-op
        _exact_bounds(spec)
        return spec

    return openapi
