"""The gate's pure parts: which endpoint a request is, and its bearer token."""

from __future__ import annotations

import pytest

from leadsync.sandbox.batch import duplicate_keys, parse_upsert
from leadsync.sandbox.middleware import bearer_token, classify
from leadsync.sandbox.settings import SandboxConfig

C = "/crm/v3/objects/contacts"


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("POST", C, "create"),
        ("GET", C, "list"),
        ("GET", C + "/123", "read"),
        ("PATCH", C + "/a@x.com", "update"),
        ("POST", C + "/search", "search"),
        ("POST", C + "/batch/upsert", "batch_upsert"),
        ("POST", C + "/batch/read", "batch_read"),
        ("DELETE", C + "/1", "other"),
        ("GET", "/crm/v3/objects/deals", "other"),
        ("GET", "/_sandbox/stats", None),
        ("GET", "/", None),
    ],
)
def test_classify(method: str, path: str, endpoint: str | None) -> None:
    assert classify(method, path) == endpoint


@pytest.mark.parametrize(
    ("header", "token"),
    [(b"Bearer abc", "abc"), (b"bearer  abc ", "abc"), (b"Basic abc", None), (b"Bearer ", None)],
)
def test_bearer_token(header: bytes, token: str | None) -> None:
    assert bearer_token({"headers": [(b"authorization", header)]}) == token
    assert bearer_token({"headers": []}) is None


def test_upsert_inputs_are_keyed_by_lowercased_email_and_duplicates_found() -> None:
    config = SandboxConfig()
    inputs = [
        parse_upsert({"id": e, "idProperty": "email", "properties": {}}, config=config)
        for e in ["A@x.com", "b@x.com", "a@X.com", "B@x.com", "c@x.com"]
    ]
    assert [i.key for i in inputs[:2]] == ["a@x.com", "b@x.com"]
    assert duplicate_keys(inputs) == ["a@x.com", "b@x.com"]


def test_upsert_input_with_a_bad_email_id_is_invalid_email() -> None:
    item = parse_upsert(
        {"id": "bad", "idProperty": "email", "properties": {}}, config=SandboxConfig()
    )
    assert [e.code for e in item.errors] == ["INVALID_EMAIL"]
