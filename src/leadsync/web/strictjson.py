"""Request bodies parsed as strict JSON: ambiguous or non-standard documents are refused.

Python's `json` module accepts more than RFC 8259: `NaN` and `Infinity`, UTF-16 and UTF-32
bodies, numbers that overflow to infinity, strings with unpaired surrogate escapes (not
Unicode text), and a key given twice (the last one silently wins). Each of those is refused
here with a sentence saying why, before any validation, so a request means one thing or
nothing. The routers use `StrictJSONRoute`; FastAPI turns the `JSONDecodeError` into a 422
whose message is ours (see `app._on_validation_error`).

Numbers follow JSON Schema's data model, where `5.0` and `1e3` are integers: a number with
no fractional part becomes an exact Python int (so `9223372036854775807.0` is that id, not
the float next to it), any other number a finite float.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Refused(f"the body is ambiguous: the key {key!r} appears more than once")
            seen.add(key)
    return result


def _constant(name: str) -> Any:
    raise _Refused(f"the body is not valid JSON: {name} is not a JSON number")


_MAX_DIGITS = 4300  # Python's own limit for int() on text (sys.get_int_max_str_digits())
# A surrogate escape (\ud800-\udfff): only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _number(text: str) -> int | float:
    value = Decimal(text)
    if not value:
        return 0
    if value == value.to_integral_value():
        if value.adjusted() >= _MAX_DIGITS:
            raise _Refused(f"the body holds an integer with more than {_MAX_DIGITS:,} digits")
        return int(value)
    number = float(text)
    if not math.isfinite(number):
        raise _Refused(f"the body holds a number too large for a float: {text[:40]}")
    return number


def _unpaired_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unpaired_surrogate(k) or _unpaired_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unpaired_surrogate(v) for v in value)
    return False


def loads(raw: bytes) -> Any:
    """Parse an RFC 8259 document in UTF-8; raise JSONDecodeError saying what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(
            f"the body is not valid JSON: invalid UTF-8 at byte {exc.start}", "", exc.start
        ) from None
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_number
        )
    except _Refused as exc:
        raise json.JSONDecodeError(exc.message, text, 0) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise json.JSONDecodeError(
            f"the body is not valid JSON: {exc.msg.lower()} at {where}", text, exc.pos
        ) from None
    except RecursionError:
        raise json.JSONDecodeError("the body is nested too deeply", text, 0) from None
    except ValueError:  # an integer longer than Python's int-conversion limit (4,300 digits)
        raise json.JSONDecodeError(
            f"the body holds an integer with more than {_MAX_DIGITS:,} digits", text, 0
        ) from None
    if _SURROGATE_ESCAPE.search(text) and _unpaired_surrogate(value):
        raise json.JSONDecodeError(
            "the body holds a string that is not Unicode text (an unpaired surrogate escape "
            "such as \\ud800)",
            text,
            0,
        )
    return value


class StrictJSONRequest(Request):
    """A request whose `json()` is `loads()`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute that parses JSON bodies with `loads()`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
