"""POST /contacts/gdpr-delete: HubSpot's permanent delete, by contact id or by email.

By email (`idProperty: "email"`), the contact with that email (without regard to case) is
deleted if there is one; either way the email goes on the blocklist (`blocklist.py`). By id,
an unknown id is a 404 and a deleted contact's email goes on the blocklist. The answer is a
204 without a body. docs/hubspot.md, section 9, has the sources.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from leadsync.sandbox.blocklist import GdprDeletion
from leadsync.sandbox.inputs import id_property, read_object
from leadsync.sandbox.properties import BadInput
from leadsync.sandbox.replies import no_content, not_found
from leadsync.sandbox.settings import CONTACTS_PATH
from leadsync.sandbox.state import SandboxState

GDPR_DELETE_PATH = CONTACTS_PATH + "/gdpr-delete"


def gdpr_input(body: dict[str, Any]) -> tuple[str, str | None]:
    """Return the `objectId` and the idProperty (`email` or None) of a body, or raise BadInput."""
    raw = body.get("objectId")
    if raw is None:
        raise BadInput("Invalid input JSON: objectId is required")
    # The spec types it a string; a number is read as its text, as batch ids are.
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise BadInput("Invalid input JSON: objectId must be a string")
    object_id = str(raw)
    if not object_id.strip():
        raise BadInput("Invalid input JSON: objectId must not be blank")
    return object_id, id_property(body.get("idProperty"))


def permanently_delete(
    state: SandboxState, object_id: str, id_property: str | None
) -> GdprDeletion | None:
    """Apply one gdpr-delete to `state` and record it; None (nothing applied) for an unknown
    id. By email, the contact with that email goes, if any, and the email is blocklisted."""
    store = state.store
    if id_property == "email":
        email = object_id.strip().lower()
        contact = store.get_by_email(email)
    else:
        contact = store.get(object_id)
        if contact is None:
            return None
        email = contact.email
    now = state.clock()
    if contact is not None:
        store.delete(contact)
    if email:
        state.blocklist.add(email, now=now)
    deleted = None if contact is None else contact.id
    deletion = GdprDeletion(now, object_id, id_property, deleted, bool(email))
    state.gdpr_deletions.record(deletion)
    return deletion


def gdpr_router(*, state: SandboxState) -> APIRouter:
    """Build the gdpr-delete route over `state`."""
    router = APIRouter()

    @router.post(GDPR_DELETE_PATH)
    async def gdpr_delete(request: Request) -> Response:
        """Permanently delete a contact by id, or by email with idProperty=email."""
        body = await read_object(request)
        object_id, by = gdpr_input(body)
        if permanently_delete(state, object_id, by) is None:
            return not_found(object_id)
        return no_content()

    return router
