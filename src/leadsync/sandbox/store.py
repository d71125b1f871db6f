"""In-memory contacts: O(1) by id and by email (case-insensitive), as HubSpot keys them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from leadsync.sandbox.blocklist import Blocklist
from leadsync.sandbox.clock import iso

# Real portals hand out 11-12 digit ids; long ids catch clients that assume small ones.
FIRST_ID = 100_000_000_001
# What HubSpot returns when a read names no properties.
DEFAULT_READ_PROPERTIES = ("email", "firstname", "lastname")


class ContactExists(Exception):
    """The email already belongs to another contact."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(f"Contact already exists. Existing ID: {existing_id}")
        self.existing_id = existing_id


@dataclass(slots=True)
class Contact:
    """One stored contact; `properties` holds only values written by clients."""

    id: str
    properties: dict[str, str]
    created_at: float
    created_iso: str
    updated_iso: str

    @property
    def email(self) -> str:
        """The contact's email, lowercased, or empty."""
        return self.properties.get("email", "")

    def to_public(self, *, names: Collection[str] | None = None) -> dict[str, Any]:
        """Render as a SimplePublicObject; `names` limits the properties, None means all."""
        if names is None:
            props = dict(self.properties)
        else:
            props = {name: self.properties[name] for name in names if name in self.properties}
        props["createdate"] = self.created_iso
        props["lastmodifieddate"] = self.updated_iso
        props["hs_object_id"] = self.id
        return {
            "id": self.id,
            "properties": props,
            "createdAt": self.created_iso,
            "updatedAt": self.updated_iso,
            "archived": False,
        }


class ContactStore:
    """Contacts by id and by lowercased email; ids are numeric strings in creation order.

    Every write that gives a contact an email tells `blocklist`, which notes a blocklisted
    email re-created (it does not refuse the write: HubSpot's API does not either).
    """

    def __init__(self, *, blocklist: Blocklist | None = None) -> None:
        self._by_id: dict[str, Contact] = {}
        self._by_email: dict[str, Contact] = {}
        self._order: list[int] = []
        self._next_id = FIRST_ID
        self.blocklist = Blocklist() if blocklist is None else blocklist

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Contact]:
        return iter(self._by_id.values())

    def clear(self) -> None:
        """Forget every contact and restart the ids."""
        self._by_id.clear()
        self._by_email.clear()
        self._order.clear()
        self._next_id = FIRST_ID

    def get(self, contact_id: str) -> Contact | None:
        """Return the contact with this id."""
        return self._by_id.get(contact_id)

    def get_by_email(self, email: str) -> Contact | None:
        """Return the contact with this email, case-insensitively."""
        return self._by_email.get(email.lower())

    def create(self, properties: dict[str, str], *, now: float) -> Contact:
        """Create a contact; raise ContactExists if its email is taken."""
        props = _normalised(properties)
        email = props.get("email", "")
        if email and (existing := self._by_email.get(email)) is not None:
            raise ContactExists(existing.id)
        number = self._next_id
        self._next_id += 1
        stamp = iso(now)
        contact = Contact(str(number), dict(props), now, stamp, stamp)
        self._by_id[contact.id] = contact
        self._order.append(number)
        if email:
            self._by_email[email] = contact
            if self.blocklist:
                self.blocklist.note_contact(email, contact.id, now=now)
        return contact

    def update(self, contact: Contact, properties: dict[str, str], *, now: float) -> Contact:
        """Merge `properties` into `contact`; raise ContactExists if the new email is taken."""
        props = _normalised(properties)
        old_email = contact.email
        new_email = props.get("email", old_email)
        if new_email != old_email:
            other = self._by_email.get(new_email) if new_email else None
            if other is not None and other is not contact:
                raise ContactExists(other.id)
            self._by_email.pop(old_email, None)
            if new_email:
                self._by_email[new_email] = contact
                if self.blocklist:
                    self.blocklist.note_contact(new_email, contact.id, now=now)
        contact.properties.update(props)
        contact.updated_iso = iso(now)
        return contact

    def upsert_by_email(
        self, email: str, properties: dict[str, str], *, now: float
    ) -> tuple[Contact, bool]:
        """Update the contact with this email or create it; return it and whether it is new."""
        props = {**properties, "email": email}
        # Looked up as create() will store it, so " A@x.com" updates a@x.com instead of clashing.
        existing = self._by_email.get(email.strip().lower())
        if existing is not None:
            return self.update(existing, props, now=now), False
        return self.create(props, now=now), True

    def delete(self, contact: Contact) -> None:
        """Remove `contact` for good; its id is never handed out again."""
        if self._by_id.pop(contact.id, None) is None:
            return
        if contact.email and self._by_email.get(contact.email) is contact:
            del self._by_email[contact.email]
        number = int(contact.id)
        index = bisect_left(self._order, number)
        if index < len(self._order) and self._order[index] == number:
            del self._order[index]

    def page(self, *, after: str | None, limit: int) -> tuple[list[Contact], str | None]:
        """Return up to `limit` contacts after the cursor, and the next cursor or None."""
        start = bisect_right(self._order, int(after)) if after else 0
        numbers = self._order[start : start + limit]
        contacts = [self._by_id[str(n)] for n in numbers]
        more = start + limit < len(self._order)
        return contacts, (str(numbers[-1]) if more and numbers else None)


def _normalised(properties: dict[str, str]) -> dict[str, str]:
    # HubSpot stores emails lowercased; the index relies on it.
    if "email" in properties:
        return {**properties, "email": properties["email"].strip().lower()}
    return properties
