"""ContactStore: ids, case-insensitive email uniqueness, upsert, paging."""

from __future__ import annotations

import re

import pytest

from leadsync.sandbox.store import FIRST_ID, ContactExists, ContactStore

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_create_assigns_numeric_string_ids_and_iso_timestamps() -> None:
    store = ContactStore()
    first = store.create({"email": "a@x.com"}, now=1_767_225_600.0)
    second = store.create({"firstname": "B"}, now=1_767_225_601.5)
    assert (first.id, second.id) == (str(FIRST_ID), str(FIRST_ID + 1))
    public = second.to_public()
    assert public["createdAt"] == "2026-01-01T00:00:01.500Z"
    assert ISO.match(public["updatedAt"])
    assert public["archived"] is False
    assert public["properties"]["hs_object_id"] == second.id


def test_email_is_unique_case_insensitively_and_stored_lowercased() -> None:
    store = ContactStore()
    created = store.create({"email": "Ana@X.com"}, now=0)
    assert created.email == "ana@x.com"
    with pytest.raises(ContactExists) as caught:
        store.create({"email": " ANA@x.COM "}, now=1)
    assert caught.value.existing_id == created.id
    assert str(caught.value) == f"Contact already exists. Existing ID: {created.id}"
    assert store.get_by_email("aNa@x.com") is created


def test_update_reindexes_a_changed_email_and_refuses_a_taken_one() -> None:
    store = ContactStore()
    a = store.create({"email": "a@x.com"}, now=0)
    b = store.create({"email": "b@x.com"}, now=0)
    store.update(a, {"email": "C@x.com", "firstname": "A"}, now=5)
    assert store.get_by_email("a@x.com") is None
    assert store.get_by_email("c@x.com") is a
    assert a.properties == {"email": "c@x.com", "firstname": "A"}
    assert a.updated_iso != a.created_iso
    with pytest.raises(ContactExists):
        store.update(a, {"email": "B@X.com"}, now=6)
    assert store.get_by_email("b@x.com") is b


def test_upsert_by_email_reports_whether_the_contact_is_new() -> None:
    store = ContactStore()
    created, new = store.upsert_by_email("a@x.com", {"firstname": "A"}, now=0)
    updated, again = store.upsert_by_email("A@X.COM", {"lastname": "Z"}, now=1)
    assert (new, again) == (True, False)
    assert updated is created
    assert created.properties == {"firstname": "A", "email": "a@x.com", "lastname": "Z"}
    assert len(store) == 1


def test_upsert_by_email_finds_the_contact_of_a_padded_email() -> None:
    # create() strips the email it stores, so the lookup must too (found by Hypothesis).
    store = ContactStore()
    created, _ = store.upsert_by_email("a@x.com", {}, now=0)
    updated, new = store.upsert_by_email(" A@x.com ", {"firstname": "A"}, now=1)
    assert (updated, new) == (created, False)
    assert len(store) == 1


def test_create_copies_the_callers_properties() -> None:
    store = ContactStore()
    props = {"firstname": "A"}
    contact = store.create(props, now=0)
    props["firstname"] = "changed"
    assert contact.properties["firstname"] == "A"


def test_page_walks_every_contact_once_in_id_order() -> None:
    store = ContactStore()
    ids = [store.create({"firstname": str(i)}, now=0).id for i in range(7)]
    seen, after = [], None
    while True:
        page, after = store.page(after=after, limit=3)
        seen += [c.id for c in page]
        if after is None:
            break
    assert seen == ids


def test_clear_forgets_contacts_and_restarts_ids() -> None:
    store = ContactStore()
    store.create({"email": "a@x.com"}, now=0)
    store.clear()
    assert len(store) == 0
    assert store.get_by_email("a@x.com") is None
    assert store.create({"email": "a@x.com"}, now=0).id == str(FIRST_ID)


def test_to_public_limits_properties_to_the_requested_names() -> None:
    contact = ContactStore().create({"email": "a@x.com", "phone": "1"}, now=0)
    props = contact.to_public(names=["phone", "city"])["properties"]
    assert set(props) == {"phone", "createdate", "lastmodifieddate", "hs_object_id"}
