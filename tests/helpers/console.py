"""Helpers of the console tests: log in through the form, read tokens out of pages, and the
FAILED rows they show (the shared factory with a HubSpot-like error class)."""

from __future__ import annotations

import re
from functools import partial

import httpx

from tests.helpers import INTERNAL_TOKEN
from tests.helpers.leads import failed_row as _failed_row

ORIGIN = "http://test"

# A FAILED lead as HubSpot leaves one: an error class before the colon, one attempt spent.
failed_row = partial(_failed_row, hubspot_error="INVALID_EMAIL: bad", hubspot_sync_attempts=1)


def field(html: str, name: str) -> str:
    """The value of a form's (first) input called `name`."""
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert match is not None, f"no input {name!r} in the page"
    return match.group(1)


async def login(client: httpx.AsyncClient, token: str = INTERNAL_TOKEN) -> httpx.Response:
    """Open the login form and send it with `token`, as a browser would."""
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/console/login",
        data={"form_token": field(form.text, "form_token"), "next": "/console", "token": token},
        headers={"Origin": ORIGIN},
    )


async def csrf(client: httpx.AsyncClient, path: str = "/console") -> str:
    """The CSRF token of the logged-in session, from one of its pages."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return field(page.text, "csrf_token")


async def post(
    client: httpx.AsyncClient, path: str, data: dict[str, object], *, origin: str = ORIGIN
) -> httpx.Response:
    """A form POST from a page of the console's own origin."""
    return await client.post(path, data=data, headers={"Origin": origin})
