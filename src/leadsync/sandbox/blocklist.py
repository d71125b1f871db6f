"""What the sandbox's GDPR deletes did: each delete applied, and the email blocklist.

HubSpot puts an email on a blocklist when a permanent delete names an email it has no contact
for (its OpenAPI spec) and when it permanently deletes a contact (its knowledge base). The
blocklist only keeps the email out of HubSpot's UI and imports: an API create or upsert of a
blocklisted email re-creates the contact. The sandbox does the same and notes, for each
blocklisted email, the first API write that re-created it since it was blocklisted, so a test
can see an erasure undone by a late retry. docs/hubspot.md, section 9, gives the sources.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GdprDeletion:
    """One gdpr-delete the sandbox applied; `at` is on the sandbox's clock."""

    at: float
    object_id: str
    id_property: str | None
    deleted_contact_id: str | None
    blocklisted: bool

    def as_json(self) -> dict[str, Any]:
        """Render for the control API; the request's fields keep HubSpot's names."""
        return {
            "at": self.at,
            "objectId": self.object_id,
            "idProperty": self.id_property,
            "deleted_contact_id": self.deleted_contact_id,
            "blocklisted": self.blocklisted,
        }


@dataclass(slots=True)
class Blocked:
    """One blocklisted email and the API write that re-created it, if one did."""

    email: str
    added_at: float
    recreated_at: float | None = None
    recreated_contact_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Render for the control API."""
        return {
            "email": self.email,
            "added_at": self.added_at,
            "recreated_at": self.recreated_at,
            "recreated_contact_id": self.recreated_contact_id,
        }


class Blocklist:
    """Blocklisted emails (lowercased) in the order added; safe to read from any thread."""

    def __init__(self) -> None:
        self._entries: dict[str, Blocked] = {}
        # Written on the event loop; a test may read it from its own thread.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        """Whether any email is blocklisted (cheap: no lock; the store asks on every write)."""
        return bool(self._entries)

    def __contains__(self, email: object) -> bool:
        return email in self._entries

    def add(self, email: str, *, now: float) -> None:
        """Blocklist `email` (lowercased) at `now`.

        An email already blocklisted and not re-created since keeps its first `added_at`; one
        that was re-created starts over, as the new delete erased the re-created contact.
        """
        with self._lock:
            entry = self._entries.get(email)
            if entry is None or entry.recreated_at is not None:
                self._entries.pop(email, None)  # re-added entries move to the end
                self._entries[email] = Blocked(email, now)

    def note_contact(self, email: str, contact_id: str, *, now: float) -> None:
        """A write gave contact `contact_id` the email `email`: a re-creation if blocklisted."""
        with self._lock:
            entry = self._entries.get(email)
            if entry is not None and entry.recreated_at is None:
                entry.recreated_at = now
                entry.recreated_contact_id = contact_id

    def listed(self) -> list[dict[str, Any]]:
        """Every blocklisted email, in the order added."""
        with self._lock:
            return [entry.as_json() for entry in self._entries.values()]

    def clear(self) -> None:
        """Forget every blocklisted email."""
        with self._lock:
            self._entries.clear()


class GdprDeletions:
    """Every gdpr-delete applied, oldest first."""

    def __init__(self) -> None:
        self._applied: list[GdprDeletion] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._applied)

    def record(self, deletion: GdprDeletion) -> None:
        """Note one applied delete."""
        with self._lock:
            self._applied.append(deletion)

    def listed(self) -> list[dict[str, Any]]:
        """Every applied delete, oldest first."""
        with self._lock:
            return [deletion.as_json() for deletion in self._applied]

    def clear(self) -> None:
        """Forget every applied delete."""
        with self._lock:
            self._applied.clear()
