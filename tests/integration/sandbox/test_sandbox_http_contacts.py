"""Single-contact endpoints over real HTTP: create, 409, read/update by id and email, list."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

import httpx

from leadsync.sandbox import SandboxConfig

C = "/crm/v3/objects/contacts"


def create(client: httpx.Client, **props: str) -> httpx.Response:
    return client.post(C, json={"properties": props})


def test_create_returns_201_simple_public_object(client: httpx.Client) -> None:
    response = create(client, email="Ana@Example.com", firstname="Ana")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].isdigit()
    assert body["archived"] is False
    assert body["properties"]["email"] == "ana@example.com"
    assert body["properties"]["firstname"] == "Ana"
    assert body["createdAt"] == body["updatedAt"]


def test_duplicate_email_gets_hubspots_exact_409_body(client: httpx.Client) -> None:
    first = create(client, email="dup@example.com").json()
    response = create(client, email="DUP@example.com", firstname="again")
    assert response.status_code == 409
    body = response.json()
    assert list(body) == ["status", "message", "correlationId", "category"]
    assert body["status"] == "error"
    assert body["message"] == f"Contact already exists. Existing ID: {first['id']}"
    assert body["category"] == "CONFLICT"
    uuid.UUID(body["correlationId"])
    # What integrations do with it: the id comes out of the text.
    match = re.search(r"Existing ID:\s*(\d+)", response.text)
    assert match is not None
    assert match.group(1) == first["id"]


def test_create_needs_email_firstname_or_lastname(client: httpx.Client) -> None:
    response = create(client, phone="123")
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_unknown_property_is_property_doesnt_exist(client: httpx.Client) -> None:
    response = create(client, email="a@example.com", lead_source="web")
    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: [")
    inner = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert inner[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert inner[0]["name"] == "lead_source"


def test_extra_property_can_be_allowed(
    client: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(extra_properties=["lead_source"])
    assert create(client, email="a@example.com", lead_source="web").status_code == 201


def test_bad_or_rejected_email_is_invalid_email(
    client: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(reject_emails=r"@spam\.test$")
    for email in ["not-an-email", "someone@spam.test"]:
        response = create(client, email=email)
        assert response.status_code == 400
        assert '"error":"INVALID_EMAIL"' in response.json()["message"]


def test_read_and_update_by_id(client: httpx.Client) -> None:
    created = create(client, email="a@example.com", firstname="A").json()
    read = client.get(f"{C}/{created['id']}")
    assert read.status_code == 200
    assert read.json()["properties"]["firstname"] == "A"
    updated = client.patch(f"{C}/{created['id']}", json={"properties": {"lastname": "Z"}})
    assert updated.status_code == 200
    props = updated.json()["properties"]
    assert (props["firstname"], props["lastname"]) == ("A", "Z")


def test_read_and_update_by_url_encoded_email(client: httpx.Client) -> None:
    created = create(client, email="a+tag@example.com").json()
    path = f"{C}/A%2Btag%40example.com"
    read = client.get(path, params={"idProperty": "email", "properties": "email,phone"})
    assert read.status_code == 200
    assert read.json()["id"] == created["id"]
    updated = client.patch(
        path, params={"idProperty": "email"}, json={"properties": {"phone": "1"}}
    )
    assert updated.status_code == 200
    assert updated.json()["properties"]["phone"] == "1"


def test_unknown_contact_is_404_object_not_found(client: httpx.Client) -> None:
    for response in [
        client.get(f"{C}/999"),
        client.patch(f"{C}/999", json={"properties": {"firstname": "x"}}),
        client.get(f"{C}/nobody%40example.com", params={"idProperty": "email"}),
    ]:
        assert response.status_code == 404
        assert response.json()["category"] == "OBJECT_NOT_FOUND"


def test_update_to_a_taken_email_is_409(client: httpx.Client) -> None:
    a = create(client, email="a@example.com").json()
    b = create(client, email="b@example.com").json()
    response = client.patch(f"{C}/{b['id']}", json={"properties": {"email": "A@example.com"}})
    assert response.status_code == 409
    assert response.json()["message"] == f"Contact already exists. Existing ID: {a['id']}"


def test_list_pages_through_every_contact(client: httpx.Client) -> None:
    ids = {create(client, email=f"p{i}@example.com").json()["id"] for i in range(5)}
    seen: set[str] = set()
    params: dict[str, str | int] = {"limit": 2}
    while True:
        response = client.get(C, params=params)
        assert response.status_code == 200
        body = response.json()
        seen |= {r["id"] for r in body["results"]}
        if "paging" not in body:
            break
        params["after"] = body["paging"]["next"]["after"]
    assert seen == ids


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post(C, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
