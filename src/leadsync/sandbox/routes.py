"""Single-contact endpoints: create, list, read and update."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.inputs import id_property, int_param, read_object, requested_names
from leadsync.sandbox.properties import check_properties, coerce_properties, validation_message
from leadsync.sandbox.replies import bad_request, conflict, json_response, not_found
from leadsync.sandbox.settings import CONTACTS_PATH as CONTACTS
from leadsync.sandbox.state import SandboxState
from leadsync.sandbox.store import DEFAULT_READ_PROPERTIES, Contact, ContactExists

_NAMED_ON_CREATE = ("email", "firstname", "lastname")


def contacts_router(*, state: SandboxState) -> APIRouter:
    """Build the create/list/read/update routes over `state`."""
    router = APIRouter()

    def find(contact_id: str, raw_id_property: str | None) -> Contact | None:
        if id_property(raw_id_property) == "email":
            return state.store.get_by_email(contact_id)
        return state.store.get(contact_id)

    @router.post(CONTACTS)
    async def create(request: Request) -> Response:
        """Create a contact; 409 with the existing id if the email is taken."""
        body = await read_object(request)
        props = coerce_properties(body.get("properties"))
        errors = check_properties(props, config=state.config)
        if errors:
            return bad_request(validation_message(errors))
        if not any(props.get(name) for name in _NAMED_ON_CREATE):
            return bad_request("A contact needs at least one of email, firstname or lastname.")
        email = props.get("email", "").strip().lower()
        if email and (rule := state.input_errors.take(email)) is not None:
            return rule.response()  # injected (POST /_sandbox/input-errors): not applied
        try:
            contact = state.store.create(props, now=state.clock())
        except ContactExists as exc:
            return conflict(exc.existing_id)
        return json_response(contact.to_public(), status=201)

    @router.get(CONTACTS)
    async def list_contacts(
        limit: str | None = None,
        after: str | None = None,
        properties: list[str] | None = Query(default=None),
    ) -> Response:
        """Return one page of contacts in id order."""
        size = int_param(limit, name="limit", default=10, maximum=100)
        if after is not None and not after.isdigit():
            return bad_request(f"after must be a cursor from a previous page, got {after!r}")
        contacts, cursor = state.store.page(after=after, limit=size)
        names = requested_names(properties) or DEFAULT_READ_PROPERTIES
        body: dict[str, object] = {"results": [c.to_public(names=names) for c in contacts]}
        if cursor is not None:
            body["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
        return json_response(body)

    @router.get(CONTACTS + "/{contact_id}")
    async def read(
        contact_id: str,
        idProperty: str | None = None,  # HubSpot's parameter name
        properties: list[str] | None = Query(default=None),
    ) -> Response:
        """Return one contact by id, or by email with idProperty=email."""
        contact = find(contact_id, idProperty)
        if contact is None:
            return not_found(contact_id)
        names = requested_names(properties) or DEFAULT_READ_PROPERTIES
        return json_response(contact.to_public(names=names))

    @router.patch(CONTACTS + "/{contact_id}")
    async def update(
        contact_id: str,
        request: Request,
        idProperty: str | None = None,  # HubSpot's parameter name
    ) -> Response:
        """Update one contact by id, or by email with idProperty=email."""
        contact = find(contact_id, idProperty)
        if contact is None:
            return not_found(contact_id)
        body = await read_object(request)
        props = coerce_properties(body.get("properties"))
        errors = check_properties(props, config=state.config)
        if errors:
            return bad_request(validation_message(errors))
        if contact.email and (rule := state.input_errors.take(contact.email)) is not None:
            return rule.response()  # injected (POST /_sandbox/input-errors): not applied
        try:
            state.store.update(contact, props, now=state.clock())
        except ContactExists as exc:
            return conflict(exc.existing_id)
        return json_response(contact.to_public())

    return router
