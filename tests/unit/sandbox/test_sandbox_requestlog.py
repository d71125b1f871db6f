"""The gate's bookkeeping: the request log, the overlapping-writes detector, and the emails
and body it reads from a request."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message

from leadsync.sandbox.peek import PARSED_BODY, parse_body, read_body, replay, request_emails
from leadsync.sandbox.requestlog import MAX_OVERLAPPING_EMAILS, RequestLog, WriteOverlaps
from leadsync.sandbox.store import ContactStore

C = "/crm/v3/objects/contacts"


def test_overlaps_count_a_write_that_finds_its_email_in_progress() -> None:
    overlaps = WriteOverlaps()
    overlaps.enter(("a@x.com", "b@x.com"))
    overlaps.enter(("c@x.com",))  # another email: no overlap
    overlaps.enter(("a@x.com",))  # a still in progress
    overlaps.leave(("a@x.com", "b@x.com"))
    overlaps.enter(("a@x.com",))  # the second write of a is still in progress
    overlaps.leave(("a@x.com",))
    overlaps.leave(("a@x.com",))
    overlaps.leave(("c@x.com",))
    overlaps.enter(("a@x.com", "b@x.com"))  # nothing in progress any more

    assert (overlaps.count, overlaps.emails) == (2, ["a@x.com"])
    overlaps.reset()
    assert (overlaps.count, overlaps.emails) == (0, [])
    # Reset zeroes the figures but not the writes really in progress.
    overlaps.enter(("a@x.com",))
    assert overlaps.count == 1


def test_overlapping_emails_keep_the_first_hundred() -> None:
    overlaps = WriteOverlaps()
    emails = tuple(f"{n}@x.com" for n in range(MAX_OVERLAPPING_EMAILS + 5))
    overlaps.enter(emails)
    overlaps.enter(emails)

    assert overlaps.count == len(emails)
    assert overlaps.emails == list(emails[:MAX_OVERLAPPING_EMAILS])


def test_log_keeps_the_most_recent_and_filters_by_arrival() -> None:
    log = RequestLog(size=3)
    entries = [log.start(endpoint) for endpoint in ("create", "list", "read", "search")]
    entries[2].at = entries[3].at = entries[1].at + 10

    listed = log.since()
    assert [e["endpoint"] for e in listed] == ["list", "read", "search"]
    assert listed[0] == {
        "at": entries[1].at,
        "done_at": None,
        "endpoint": "list",
        "status": None,
        "emails": [],
        "retry_after": None,
        "policy": None,
    }
    assert [e["endpoint"] for e in log.since(entries[2].at)] == ["read", "search"]
    log.clear()
    assert log.since() == []


def _scope(path: str, query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "path": path, "query_string": query}


@pytest.mark.parametrize(
    ("endpoint", "body", "emails"),
    [
        (
            "batch_upsert",
            {
                "inputs": [
                    {"id": " A@X.com", "idProperty": "email"},
                    {"id": "123", "properties": {"email": "by-id@x.com"}},
                    {"id": "a@x.com", "idProperty": "email"},
                    {"id": "b@x.com", "idProperty": "email"},
                    "junk",
                ]
            },
            ("a@x.com", "b@x.com"),
        ),
        ("create", {"properties": {"email": "New@X.com", "firstname": "N"}}, ("new@x.com",)),
        ("create", {"properties": {"firstname": "N"}}, ()),
        (
            "search",
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "EQ", "value": "S@x.com"}]},
                    {"filters": [{"propertyName": "email", "operator": "NEQ", "value": "n@x.com"}]},
                ]
            },
            ("s@x.com",),
        ),
        ("batch_read", {"inputs": [{"id": "r@x.com"}], "idProperty": "email"}, ()),
    ],
)
def test_emails_named_in_the_body(
    endpoint: str, body: dict[str, Any], emails: tuple[str, ...]
) -> None:
    assert request_emails(endpoint, _scope(C), body, ContactStore()) == emails


def test_emails_of_an_update_by_email_and_by_id() -> None:
    store = ContactStore()
    contact = store.create({"email": "Stored@x.com"}, now=0.0)
    by_email = _scope(f"{C}/Key@X.com", b"idProperty=email")

    assert request_emails("update", by_email, None, store) == ("key@x.com",)
    assert request_emails("update", _scope(f"{C}/{contact.id}"), None, store) == ("stored@x.com",)
    assert request_emails("update", _scope(f"{C}/999"), None, store) == ()
    assert request_emails("list", _scope(C), None, store) == ()


def test_only_json_objects_of_email_endpoints_are_parsed_and_kept_for_the_route() -> None:
    scope: dict[str, Any] = {}
    assert parse_body("list", b'{"a": 1}', scope) is None
    assert parse_body("create", b"[1]", scope) is None
    assert parse_body("create", b"{not json", scope) is None
    assert PARSED_BODY not in scope
    assert parse_body("create", b'{"a": 1}', scope) == {"a": 1}
    assert scope[PARSED_BODY] == {"a": 1}


async def test_body_is_read_whole_and_replayed_before_the_real_receive() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"a"', "more_body": True},
        {"type": "http.request", "body": b": 1}", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    body = await read_body(receive)
    replayed = replay(b'{"a": 1}' if body is None else body, receive)

    assert body == b'{"a": 1}'
    assert await replayed() == {"type": "http.request", "body": b'{"a": 1}', "more_body": False}
    assert await replayed() == {"type": "http.disconnect"}


async def test_a_client_gone_before_its_body_is_none() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    assert await read_body(receive) is None


def test_overlaps_track_several_writes_of_one_email_down_to_none() -> None:
    overlaps = WriteOverlaps()
    for _ in range(3):
        overlaps.enter(("a@x.com", "b@x.com"))
    overlaps.leave(("a@x.com", "b@x.com"))
    assert (overlaps.in_progress("a@x.com"), overlaps.count) == (2, 4)
    overlaps.leave(("a@x.com",))
    overlaps.leave(("a@x.com",))
    overlaps.enter(("a@x.com",))  # none left in progress: no overlap
    assert (overlaps.in_progress("a@x.com"), overlaps.in_progress("b@x.com")) == (1, 2)
    assert overlaps.count == 4
    overlaps.leave(("a@x.com", "b@x.com"))
    overlaps.leave(("b@x.com",))
    assert overlaps.in_progress("a@x.com") == overlaps.in_progress("b@x.com") == 0
    assert overlaps.emails == ["a@x.com", "b@x.com"]
