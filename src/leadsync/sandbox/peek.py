"""The gate's look at a request before the routes see it: its body and the emails it touches.

The gate reads the body once, replays it to the app through a wrapped `receive`, and leaves
the parsed JSON object in the scope so the route does not parse it a second time.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope

from leadsync.sandbox.settings import CONTACTS_PATH
from leadsync.sandbox.store import ContactStore

# Where the gate leaves the parsed JSON object body for `inputs.read_object`.
PARSED_BODY = "leadsync.sandbox.body"
# The endpoints whose body names emails: the rest are not parsed at the gate.
_PARSED = frozenset({"create", "batch_upsert", "search", "gdpr_delete"})


async def read_body(receive: Receive) -> bytes | None:
    """Read the whole request body; None if the client left first."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that first hands out `body`, then whatever the real one says (disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


def parse_body(endpoint: str, body: bytes, scope: Scope) -> dict[str, Any] | None:
    """Parse the JSON object body of the endpoints that name emails in it, for the route too."""
    if endpoint not in _PARSED or not body:
        return None
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # the route reads it again and refuses it with HubSpot's message
    if not isinstance(parsed, dict):
        return None
    scope[PARSED_BODY] = parsed
    return parsed


def _email(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def request_emails(
    endpoint: str, scope: Scope, body: dict[str, Any] | None, store: ContactStore
) -> tuple[str, ...]:
    """The distinct lowercased emails a CRM request writes or looks up, when known."""
    found: list[str] = []
    if body is not None:
        if endpoint == "batch_upsert":
            inputs = body.get("inputs")
            if isinstance(inputs, list):
                # The hot path of the benchmarks: kept to one comprehension, no calls.
                found = [
                    key.strip().lower()
                    for item in inputs
                    if isinstance(item, dict)
                    and item.get("idProperty") == "email"
                    and isinstance(key := item.get("id"), str)
                ]
        elif endpoint == "create":
            props = body.get("properties")
            if isinstance(props, dict):
                found = [_email(props.get("email"))]
        elif endpoint == "search":
            found = _searched_emails(body)
        elif endpoint == "gdpr_delete":
            found = [_deleted_email(body, store)]
    elif endpoint == "update":
        key = scope["path"][len(CONTACTS_PATH) + 1 :]
        if _by_email(scope):
            found = [_email(key)]
        elif (contact := store.get(key)) is not None:
            found = [contact.email]
    unique = dict.fromkeys(found)
    unique.pop("", None)
    return tuple(unique)


def _deleted_email(body: dict[str, Any], store: ContactStore) -> str:
    # By email: the email named; by id: the stored contact's email when the request arrived.
    key = body.get("objectId")
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)  # the route reads a numeric id as its text
    if not isinstance(key, str):
        return ""
    if body.get("idProperty") == "email":
        return _email(key)
    contact = store.get(key) if body.get("idProperty") in (None, "", "hs_object_id") else None
    return "" if contact is None else contact.email


def _by_email(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    if b"idProperty" not in query:
        return False
    values = parse_qs(query.decode("latin-1")).get("idProperty", [])
    return values[-1:] == ["email"]


def _searched_emails(body: dict[str, Any]) -> list[str]:
    groups = body.get("filterGroups")
    if not isinstance(groups, list):
        return []
    return [
        _email(item.get("value"))
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("filters"), list)
        for item in group["filters"]
        if isinstance(item, dict)
        and item.get("propertyName") == "email"
        and item.get("operator") == "EQ"
    ]
