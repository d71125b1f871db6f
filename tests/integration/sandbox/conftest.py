"""One sandbox over real HTTP for the module's tests, reset before each; every CRM answer
is checked against HubSpot's published OpenAPI spec (tests/data/hubspot/) as it arrives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.helpers.openapi import SpecChecker, load_spec

from leadsync.sandbox import ManualClock, RunningSandbox, SandboxConfig, sandbox_in_thread


class BodilessSpecChecker(SpecChecker):
    """A SpecChecker that also checks the answers the spec gives no body (gdpr-delete's 204):
    such an answer must come without a body, and is then counted as checked.

    It belongs in tests/helpers/openapi.py; it lives here while that file is outside the
    change that added gdpr-delete.
    """

    def bodiless(self, method: str, path: str, status: int) -> bool:
        """Whether the spec lists this status for this operation with no content at all."""
        template = next(t for rx, t in self._templates if rx.match(path))
        responses = self.spec["paths"][template][method.lower()]["responses"]
        response = responses.get(str(status))
        return response is not None and not response.get("content")

    def hook(self, response: httpx.Response) -> None:
        path = response.request.url.path
        method = response.request.method
        if path.startswith("/crm/") and self.bodiless(method, path, response.status_code):
            response.read()
            assert response.content == b"", f"{method} {path} -> {response.status_code} has a body"
            self.checked.append((method, path, response.status_code))
            return
        super().hook(response)


@pytest.fixture(scope="session")
def spec_checker() -> SpecChecker:
    return BodilessSpecChecker(load_spec())


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def shared_sandbox(clock: ManualClock) -> Iterator[RunningSandbox]:
    with sandbox_in_thread(clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(shared_sandbox: RunningSandbox, clock: ManualClock) -> RunningSandbox:
    """The shared sandbox with default config, no contacts, no history, clock a day later."""
    shared_sandbox.state.config = SandboxConfig()
    shared_sandbox.state.reset()
    clock.advance(86_400)
    return shared_sandbox


@pytest.fixture
def configure(sandbox: RunningSandbox) -> Callable[..., SandboxConfig]:
    """Change the sandbox's config for this test (reset again so seeds replay)."""

    def apply(**changes: Any) -> SandboxConfig:
        config = sandbox.state.update_config(changes)
        sandbox.state.reset()
        return config

    return apply


@pytest.fixture
def client(sandbox: RunningSandbox, spec_checker: SpecChecker) -> Iterator[httpx.Client]:
    with spec_checker.client(sandbox.url, sandbox.token, timeout=10) as http:
        yield http


@pytest.fixture
def client_for(
    sandbox: RunningSandbox, spec_checker: SpecChecker
) -> Iterator[Callable[..., httpx.Client]]:
    """A factory of spec-checked clients with a chosen token (None: no Authorization)."""
    made: list[httpx.Client] = []

    def build(token: str | None, **kwargs: Any) -> httpx.Client:
        made.append(spec_checker.client(sandbox.url, token, **kwargs))
        return made[-1]

    yield build
    for http in made:
        http.close()


@pytest.fixture
def control(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """A client for the unauthenticated control API."""
    with httpx.Client(base_url=sandbox.url + "/_sandbox", timeout=10) as http:
        yield http
