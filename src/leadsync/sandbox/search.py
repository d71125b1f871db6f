"""POST /contacts/search: filter groups over the contacts HubSpot's index has caught up with."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.inputs import read_object
from leadsync.sandbox.properties import BadInput
from leadsync.sandbox.replies import json_response
from leadsync.sandbox.settings import CONTACTS_PATH
from leadsync.sandbox.state import SandboxState
from leadsync.sandbox.store import DEFAULT_READ_PROPERTIES, Contact, ContactStore

Predicate = Callable[[Contact], bool]
MAX_SEARCH_LIMIT = 200


def _value(contact: Contact, name: str) -> str:
    return contact.id if name == "hs_object_id" else contact.properties.get(name, "")


def _predicate(item: object) -> Predicate:
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        raise BadInput("Invalid filter: propertyName and operator are required")
    name: str = item["propertyName"]
    operator = item.get("operator")
    # HubSpot compares string properties case-insensitively.
    wanted = str(item.get("value", "")).casefold()
    values = {str(v).casefold() for v in item.get("values") or ()}
    tests: dict[object, Predicate] = {
        "EQ": lambda c: _value(c, name).casefold() == wanted,
        "NEQ": lambda c: _value(c, name).casefold() != wanted,
        "IN": lambda c: _value(c, name).casefold() in values,
        "NOT_IN": lambda c: _value(c, name).casefold() not in values,
        "HAS_PROPERTY": lambda c: _value(c, name) != "",
        "NOT_HAS_PROPERTY": lambda c: _value(c, name) == "",
        "CONTAINS_TOKEN": lambda c: wanted.strip("*") in _value(c, name).casefold(),
    }
    if operator not in tests:
        raise BadInput(f"Unsupported filter operator in the sandbox: {operator!r}")
    return tests[operator]


def _candidates(store: ContactStore, groups: list[Any]) -> Iterable[Contact]:
    # The common lookup, one EQ on email, goes through the email index instead of a scan.
    if len(groups) == 1 and isinstance(groups[0], dict):
        filters = groups[0].get("filters") or []
        for item in filters:
            is_dict = isinstance(item, dict)
            if is_dict and item.get("propertyName") == "email" and item.get("operator") == "EQ":
                found = store.get_by_email(str(item.get("value", "")))
                return [found] if found is not None else []
    return store


def search_contacts(
    store: ContactStore, body: dict[str, Any], *, now: float, lag_seconds: float
) -> dict[str, Any]:
    """Run a HubSpot search request; contacts younger than `lag_seconds` are not indexed yet."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise BadInput("filterGroups must be a list")
    matchers = [
        [_predicate(f) for f in (g.get("filters") or [])] for g in groups if isinstance(g, dict)
    ]
    query = str(body.get("query") or "").casefold()
    limit = body.get("limit") or 10
    after = body.get("after") or 0
    try:
        limit, offset = min(int(limit), MAX_SEARCH_LIMIT), int(after)
    except (TypeError, ValueError):
        raise BadInput("limit and after must be integers") from None
    names = body.get("properties") or DEFAULT_READ_PROPERTIES
    matched = [
        c
        for c in _candidates(store, groups)
        if c.created_at + lag_seconds <= now
        and (not matchers or any(all(test(c) for test in group) for group in matchers))
        and (
            not query
            or any(query in c.properties.get(n, "").casefold() for n in DEFAULT_READ_PROPERTIES)
        )
    ]
    page = matched[offset : offset + limit]
    result: dict[str, Any] = {
        "total": len(matched),
        "results": [c.to_public(names=names) for c in page],
    }
    if offset + limit < len(matched):
        cursor = str(offset + limit)
        result["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
    return result


def search_router(*, state: SandboxState) -> APIRouter:
    """Build the search route over `state`."""
    router = APIRouter()

    @router.post(CONTACTS_PATH + "/search")
    async def search(request: Request) -> Response:
        """Search contacts by filter groups (OR of ANDs)."""
        body = await read_object(request)
        lag = state.config.search_lag_ms / 1000
        return json_response(search_contacts(state.store, body, now=state.clock(), lag_seconds=lag))

    return router
