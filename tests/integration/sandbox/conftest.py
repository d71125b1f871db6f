"""One sandbox over real HTTP for the module's tests, reset before each; every CRM answer
is checked against HubSpot's published OpenAPI spec as it arrives."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator

from leadsync.sandbox import ManualClock, RunningSandbox, SandboxConfig, sandbox_in_thread

SPEC_PATH = Path("/work/shared/hubspot/contacts-v3.openapi.json")
CONTACTS = "/crm/v3/objects/contacts"


class SpecChecker:
    """Validates a sandbox response body against the schema the spec gives its status."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._templates = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
            for path in sorted(spec["paths"], key=lambda p: p.count("{"))
        ]
        self._validators: dict[str, Any] = {}
        self.checked: list[tuple[str, str, int]] = []

    def schema_ref(self, method: str, path: str, status: int) -> str:
        """Return the $ref of the schema for this operation and status ('default' if unlisted)."""
        template = next(t for rx, t in self._templates if rx.match(path))
        responses = self.spec["paths"][template][method.lower()]["responses"]
        response = responses.get(str(status)) or responses["default"]
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[-1]
            response = self.spec["components"]["responses"][name]
        content = response["content"]
        media = content.get("application/json") or content["*/*"]
        ref: str = media["schema"]["$ref"]
        return ref

    def validate(self, method: str, path: str, status: int, body: Any) -> None:
        """Raise if `body` does not match the spec's schema for the answer."""
        ref = self.schema_ref(method, path, status)
        validator = self._validators.get(ref)
        if validator is None:
            schema = {"$ref": ref, "components": self.spec["components"]}
            validator = OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)
            self._validators[ref] = validator
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not problems, f"{method} {path} -> {status} breaks {ref}: {problems}\n{body}"
        self.checked.append((method, path, status))

    def hook(self, response: httpx.Response) -> None:
        """An httpx response hook checking every CRM answer."""
        path = response.request.url.path
        if not path.startswith("/crm/"):
            return
        response.read()
        assert response.headers["content-type"].startswith("application/json")
        self.validate(response.request.method, path, response.status_code, response.json())


@pytest.fixture(scope="session")
def spec_checker() -> SpecChecker:
    return SpecChecker(json.loads(SPEC_PATH.read_text()))


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


def make_client(url: str, token: str | None, checker: SpecChecker, **kwargs: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    hooks = {"response": [checker.hook]}
    return httpx.Client(base_url=url, headers=headers, event_hooks=hooks, **kwargs)


@pytest.fixture
def client(sandbox: RunningSandbox, spec_checker: SpecChecker) -> Iterator[httpx.Client]:
    with make_client(sandbox.url, sandbox.token, spec_checker, timeout=10) as http:
        yield http


@pytest.fixture
def client_for(
    sandbox: RunningSandbox, spec_checker: SpecChecker
) -> Iterator[Callable[..., httpx.Client]]:
    """A factory of spec-checked clients with a chosen token (None: no Authorization)."""
    made: list[httpx.Client] = []

    def build(token: str | None, **kwargs: Any) -> httpx.Client:
        made.append(make_client(sandbox.url, token, spec_checker, **kwargs))
        return made[-1]

    yield build
    for http in made:
        http.close()


@pytest.fixture
def control(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """A client for the unauthenticated control API."""
    with httpx.Client(base_url=sandbox.url + "/_sandbox", timeout=10) as http:
        yield http
