"""GDPR deletes in the sandbox's state: the store forgets the contact, the blocklist notes
the email, and an API write of a blocklisted email re-creates it (and is noted)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsync.sandbox import ManualClock, SandboxConfig, SandboxState
from leadsync.sandbox.gdpr import gdpr_input, permanently_delete
from leadsync.sandbox.properties import BadInput
from leadsync.sandbox.store import FIRST_ID, ContactStore


def fresh_state() -> tuple[SandboxState, ManualClock]:
    clock = ManualClock()
    return SandboxState(config=SandboxConfig(), clock=clock), clock


def test_delete_forgets_the_contact_by_id_email_and_page_and_never_reuses_its_id() -> None:
    store = ContactStore()
    a = store.create({"email": "a@x.com"}, now=0)
    b = store.create({"email": "b@x.com"}, now=0)
    c = store.create({"firstname": "C"}, now=0)

    store.delete(b)
    store.delete(b)  # a second delete of the same contact changes nothing

    assert (store.get(b.id), store.get_by_email("B@x.com"), len(store)) == (None, None, 2)
    assert store.page(after=None, limit=10) == ([a, c], None)
    assert store.page(after=a.id, limit=1) == ([c], None)
    assert store.create({"email": "b@x.com"}, now=1).id == str(FIRST_ID + 3)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"objectId": "a@x.com", "idProperty": "email"}, ("a@x.com", "email")),
        ({"objectId": "12"}, ("12", None)),
        ({"objectId": 12, "idProperty": "hs_object_id"}, ("12", None)),
        ({"objectId": "12", "idProperty": ""}, ("12", None)),
        ({"objectId": "12", "idProperty": None, "extra": 1}, ("12", None)),
    ],
)
def test_gdpr_input_reads_the_object_id_and_id_property(
    body: dict[str, object], expected: tuple[str, str | None]
) -> None:
    assert gdpr_input(body) == expected


@pytest.mark.parametrize(
    "body",
    [{}, {"objectId": None}, {"objectId": " "}, {"objectId": False}, {"objectId": 1.5}],
)
def test_gdpr_input_refuses_a_missing_or_blank_object_id(body: dict[str, object]) -> None:
    with pytest.raises(BadInput, match="objectId"):
        gdpr_input(body)


def test_an_unknown_id_applies_and_records_nothing() -> None:
    state, _ = fresh_state()
    state.store.create({"email": "a@x.com"}, now=0)

    assert permanently_delete(state, "999", None) is None

    assert (len(state.store), len(state.gdpr_deletions), len(state.blocklist)) == (1, 0, 0)


def test_reset_forgets_deletions_and_blocklist() -> None:
    state, _ = fresh_state()
    permanently_delete(state, "a@x.com", "email")

    state.reset()

    assert (len(state.gdpr_deletions), len(state.blocklist)) == (0, 0)
    state.store.create({"email": "a@x.com"}, now=0)
    assert state.blocklist.listed() == []


# --- any sequence of writes and deletes keeps the store and the blocklist consistent ---------

EMAILS = ("ana@x.com", "bob@x.com", "cy@x.com")


@st.composite
def spelled(draw: st.DrawFn) -> str:
    """One of a few emails, in any case, maybe with spaces around it."""
    email = draw(st.sampled_from(EMAILS))
    upper = draw(st.lists(st.booleans(), min_size=len(email), max_size=len(email)))
    pad = draw(st.sampled_from(["", " "]))
    return pad + "".join(ch.upper() if up else ch for ch, up in zip(email, upper, strict=True))


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), spelled()),
        st.tuples(st.just("upsert"), spelled()),
        st.tuples(st.just("rename"), spelled(), spelled()),
        st.tuples(st.just("delete_email"), spelled()),
        st.tuples(st.just("delete_id"), spelled()),
        st.tuples(st.just("tick"), st.integers(1, 5)),
    ),
    max_size=25,
)


@dataclass
class Model:
    """What the sandbox should hold: the id of each email's contact, and per blocklisted
    email the contact that re-created it since it was last blocklisted (None: none yet)."""

    contacts: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str | None] = field(default_factory=dict)
    deleted_ids: set[str] = field(default_factory=set)

    def written(self, email: str, contact_id: str) -> None:
        self.contacts[email] = contact_id
        if email in self.blocked and self.blocked[email] is None:
            self.blocked[email] = contact_id

    def deleted(self, email: str) -> None:
        if email in self.contacts:
            self.deleted_ids.add(self.contacts.pop(email))
        if self.blocked.get(email, "new") is not None:  # new, or re-created since
            self.blocked.pop(email, None)
            self.blocked[email] = None


def check(state: SandboxState, model: Model) -> None:
    store = state.store
    contacts = list(store)
    # At most one contact per email, and the index finds each.
    by_email = [c.email for c in contacts if c.email]
    assert len(by_email) == len(set(by_email))
    assert {c.email: c.id for c in contacts} == model.contacts
    for contact in contacts:
        assert store.get_by_email(contact.email.upper()) is contact
    # A deleted contact is gone by id and from the pages, which stay in id order.
    assert not any(store.get(i) for i in model.deleted_ids)
    paged, _ = store.page(after=None, limit=100)
    assert [c.id for c in paged] == sorted((c.id for c in contacts), key=int)
    # The blocklist: every email deleted, in the order last blocklisted, with its re-creator.
    listed = state.blocklist.listed()
    assert [(b["email"], b["recreated_contact_id"]) for b in listed] == list(model.blocked.items())
    assert all((b["recreated_at"] is None) == (b["recreated_contact_id"] is None) for b in listed)


@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_any_sequence_of_writes_and_deletes_keeps_the_store_consistent(
    ops: list[tuple[object, ...]],
) -> None:
    state, clock = fresh_state()
    store = state.store
    model = Model()
    for op in ops:
        kind, *args = op
        if kind == "tick":
            assert isinstance(args[0], int)
            clock.advance(args[0])
            continue
        raw = str(args[0])
        email = raw.strip().lower()
        if kind == "create":
            if email in model.contacts:
                continue  # a 409: covered by the store's own tests
            model.written(email, store.create({"email": raw}, now=clock()).id)
        elif kind == "upsert":
            contact, new = store.upsert_by_email(raw, {}, now=clock())
            assert new == (email not in model.contacts)
            model.written(email, contact.id)
        elif kind == "rename":
            # A PATCH giving the contact of `email` the address `target`, if it is free.
            target = str(args[1]).strip().lower()
            found = store.get_by_email(email)
            if found is None or (target in model.contacts and target != email):
                continue
            store.update(found, {"email": target}, now=clock())
            if target != email:
                del model.contacts[email]
                model.written(target, found.id)
        elif kind == "delete_email":
            deletion = permanently_delete(state, raw, "email")
            assert deletion is not None
            assert deletion.deleted_contact_id == model.contacts.get(email)
            assert deletion.blocklisted
            model.deleted(email)
            assert store.get_by_email(email) is None  # gone until a later write
        else:
            known = model.contacts.get(email)
            deletion = permanently_delete(state, known or "100000000000", None)
            assert (deletion is None) == (known is None)
            if known is not None:
                model.deleted(email)
        check(state, model)
    applied = state.gdpr_deletions.listed()
    assert [d["at"] for d in applied] == sorted(d["at"] for d in applied)
