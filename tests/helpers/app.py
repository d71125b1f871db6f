"""The app as the tests reach it: the internal token and the `client_factory` fixture's type."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI

INTERNAL_TOKEN = "test-internal-token"
INTERNAL_HEADERS = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}

ClientFactory = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]
"""`client_factory(settings=None, *, background=None, migrate_on_start=True)`: yields
(app, client) with the app's lifespan running (tests/conftest.py)."""
