"""Auth over real HTTP: 401 INVALID_AUTHENTICATION, tokens added and revoked at run time."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

C = "/crm/v3/objects/contacts"


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_unknown_token_is_401(
    client_for: Callable[..., httpx.Client], token: str | None
) -> None:
    response = client_for(token).get(C)
    assert response.status_code == 401
    assert response.headers["x-hubspot-auth-failure"] == "401 Unauthorized"
    body = response.json()
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["status"] == "error"
    assert "x-hubspot-ratelimit-remaining" not in response.headers


def test_tokens_are_added_and_revoked_through_the_control_api(
    client_for: Callable[..., httpx.Client], control: httpx.Client
) -> None:
    http = client_for("rotated")
    assert http.get(C).status_code == 401
    patched = control.patch("/config", json={"add_tokens": ["rotated"]})
    assert "rotated" in patched.json()["tokens"]
    assert http.get(C).status_code == 200
    control.patch("/config", json={"revoke_tokens": ["rotated"]})
    assert http.get(C).status_code == 401
