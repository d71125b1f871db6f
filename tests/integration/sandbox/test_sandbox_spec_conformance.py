"""Every kind of answer the sandbox gives matches HubSpot's published OpenAPI schemas.

The client fixture validates each CRM response as it arrives; this test makes sure every
endpoint the sandbox serves is exercised with every status it can answer.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from tests.helpers.openapi import SpecChecker

from leadsync.sandbox import SandboxConfig

C = "/crm/v3/objects/contacts"
ITEM = {"id": "a@x.com", "idProperty": "email", "properties": {"firstname": "A"}}
BAD = {"id": "bad", "idProperty": "email", "properties": {}, "objectWriteTraceId": "t"}
GDPR = C + "/gdpr-delete"
SEARCH = {
    "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "a@x.com"}]}]
}

EXPECTED = {
    ("POST", C): {201, 400, 401, 409, 429, 500, 502, 503, 504},
    ("GET", C): {200, 400, 401, 429},
    ("GET", C + "/{id}"): {200, 404},
    ("PATCH", C + "/{id}"): {200, 400, 404, 409},
    ("POST", C + "/search"): {200, 400, 429},
    ("POST", C + "/batch/upsert"): {200, 207, 400},
    ("POST", C + "/batch/read"): {200, 207, 400},
    ("POST", GDPR): {204, 400, 401, 404, 429},
}


def _endpoint(method: str, path: str) -> tuple[str, str]:
    tail = path.removeprefix(C)
    if tail.strip("/") and tail not in ("/search", "/batch/upsert", "/batch/read", "/gdpr-delete"):
        return method, C + "/{id}"
    return method, path


def exercise(
    client: httpx.Client,
    client_for: Callable[..., httpx.Client],
    configure: Callable[..., SandboxConfig],
) -> None:
    created = client.post(C, json={"properties": {"email": "a@x.com"}}).json()
    other = client.post(C, json={"properties": {"email": "b@x.com"}}).json()
    client.post(C, json={"properties": {"email": "a@x.com"}})  # 409
    client.post(C, json={"properties": {"nope": "x"}})  # 400
    client_for("wrong").post(C, json={"properties": {"email": "c@x.com"}})  # 401
    client.get(C, params={"limit": 1})
    client.get(C, params={"after": "not-a-cursor"})  # 400
    client_for(None).get(C)  # 401
    client.get(f"{C}/{created['id']}")
    client.get(f"{C}/a%40x.com", params={"idProperty": "email"})
    client.get(f"{C}/404")
    client.patch(f"{C}/{created['id']}", json={"properties": {"firstname": "A"}})
    client.patch(f"{C}/{created['id']}", json={"properties": {"email": "nope"}})  # 400
    client.patch(f"{C}/{other['id']}", json={"properties": {"email": "a@x.com"}})  # 409
    client.patch(f"{C}/404", json={"properties": {}})
    client.post(C + "/search", json=SEARCH)
    client.post(
        C + "/search",
        json={"filterGroups": [{"filters": [{"propertyName": "x", "operator": "GT"}]}]},
    )
    client.post(C + "/batch/upsert", json={"inputs": [ITEM]})
    client.post(C + "/batch/upsert", json={"inputs": [ITEM, ITEM]})  # 400 duplicates
    client.post(C + "/batch/upsert", json={"inputs": [ITEM, BAD]})  # 400 whole
    client.post(C + "/batch/read", json={"idProperty": "email", "inputs": [{"id": "a@x.com"}]})
    client.post(C + "/batch/read", json={"inputs": [{"id": created["id"]}, {"id": "1"}]})  # 207
    client.post(C + "/batch/read", json={"inputs": "nope"})  # 400
    gone = client.post(C, json={"properties": {"email": "gone@x.com"}}).json()
    client.post(GDPR, json={"objectId": "GONE@x.com", "idProperty": "email"})  # 204
    client.post(GDPR, json={"objectId": "never@x.com", "idProperty": "email"})  # 204, blocklisted
    client.post(GDPR, json={"objectId": gone["id"]})  # 404: deleted above
    client.post(GDPR, json={"objectId": created["id"]})  # 204 by id
    client.post(GDPR, json={"objectId": " "})  # 400
    client.post(GDPR, json={"objectId": "a@x.com", "idProperty": "phone"})  # 400
    client_for("wrong").post(GDPR, json={"objectId": "a@x.com", "idProperty": "email"})  # 401
    configure(invalid_batch="per-input")
    client.post(C + "/batch/upsert", json={"inputs": [ITEM, BAD]})  # 207
    for _ in range(6):
        client.post(C + "/search", json=SEARCH)  # the 6th: 429 SECONDLY
    configure(fault_5xx=1.0, seed=3)
    for _ in range(30):
        client.post(C, json={"properties": {"email": "z@x.com"}})  # 500/502/503/504
    configure(rate_limit="1/10s", fault_5xx=0.0)
    client.get(C)
    client.get(C)  # 429 TEN_SECONDLY_ROLLING
    client.post(C, json={"properties": {"email": "y@x.com"}})  # 429
    client.post(GDPR, json={"objectId": "y@x.com", "idProperty": "email"})  # 429


def test_every_endpoint_and_status_matches_the_spec(
    client: httpx.Client,
    client_for: Callable[..., httpx.Client],
    configure: Callable[..., SandboxConfig],
    spec_checker: SpecChecker,
) -> None:
    checked = spec_checker.checked
    start = len(checked)
    exercise(client, client_for, configure)
    seen: dict[tuple[str, str], set[int]] = {}
    for method, path, status in checked[start:]:
        seen.setdefault(_endpoint(method, path), set()).add(status)
    assert seen == EXPECTED


def test_the_checker_rejects_a_body_the_spec_forbids(spec_checker: SpecChecker) -> None:
    validate = spec_checker.validate
    with pytest.raises(AssertionError, match="category"):
        validate("POST", C, 409, {"status": "error", "message": "x", "correlationId": "x"})
    body = {"id": "1", "properties": {}, "createdAt": "now", "updatedAt": "now", "archived": False}
    with pytest.raises(AssertionError, match="date-time"):
        validate("POST", C, 201, body)


def test_the_checker_rejects_a_body_on_an_answer_the_spec_gives_none(
    spec_checker: SpecChecker,
) -> None:
    request = httpx.Request("POST", "http://sandbox" + GDPR)
    spec_checker.hook(httpx.Response(204, request=request))
    assert spec_checker.checked[-1] == ("POST", GDPR, 204)
    with pytest.raises(AssertionError, match="has a body"):
        spec_checker.hook(httpx.Response(204, content=b"{}", request=request))
