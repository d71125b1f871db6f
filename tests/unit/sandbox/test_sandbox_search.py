"""search_contacts: filters, case-insensitivity, paging and the index lag."""

from __future__ import annotations

from typing import Any

import pytest

from leadsync.sandbox.properties import BadInput
from leadsync.sandbox.search import search_contacts
from leadsync.sandbox.store import ContactStore


def eq(name: str, value: str) -> dict[str, Any]:
    return {
        "filterGroups": [{"filters": [{"propertyName": name, "operator": "EQ", "value": value}]}]
    }


@pytest.fixture
def store() -> ContactStore:
    store = ContactStore()
    store.create({"email": "a@x.com", "firstname": "Ana"}, now=100)
    store.create({"email": "b@x.com", "firstname": "Ben"}, now=100)
    store.create({"email": "c@x.com", "firstname": "ana"}, now=200)
    return store


def emails(result: dict[str, Any]) -> list[str]:
    return [r["properties"]["email"] for r in result["results"]]


def test_eq_on_email_is_case_insensitive(store: ContactStore) -> None:
    result = search_contacts(store, eq("email", "A@X.COM"), now=300, lag_seconds=0)
    assert (result["total"], emails(result)) == (1, ["a@x.com"])


def test_a_contact_is_invisible_until_the_lag_has_passed(store: ContactStore) -> None:
    body = eq("email", "c@x.com")
    assert search_contacts(store, body, now=204.9, lag_seconds=5)["total"] == 0
    assert search_contacts(store, body, now=205.0, lag_seconds=5)["total"] == 1


def test_filter_groups_are_or_of_and(store: ContactStore) -> None:
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "ANA"}]},
            {"filters": [{"propertyName": "email", "operator": "IN", "values": ["b@x.com"]}]},
        ]
    }
    assert emails(search_contacts(store, body, now=300, lag_seconds=0)) == [
        "a@x.com",
        "b@x.com",
        "c@x.com",
    ]


def test_paging_uses_offsets(store: ContactStore) -> None:
    first = search_contacts(store, {"limit": 2}, now=300, lag_seconds=0)
    assert first["total"] == 3
    assert first["paging"]["next"]["after"] == "2"
    rest = search_contacts(store, {"limit": 2, "after": "2"}, now=300, lag_seconds=0)
    assert emails(rest) == ["c@x.com"]
    assert "paging" not in rest


def test_unsupported_operator_is_bad_input(store: ContactStore) -> None:
    body = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "GT"}]}]}
    with pytest.raises(BadInput):
        search_contacts(store, body, now=300, lag_seconds=0)
