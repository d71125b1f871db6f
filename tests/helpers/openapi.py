"""HubSpot's published OpenAPI spec for CRM contacts v3, as a checker of the sandbox's answers.

The spec is vendored in tests/data/hubspot/ (its README says where it comes from).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).resolve().parent.parent / "data" / "hubspot" / "contacts-v3.openapi.json"


def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    """Return the parsed spec."""
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


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

    def client(self, url: str, token: str | None, **kwargs: Any) -> httpx.Client:
        """Return a sync client on `url` whose CRM answers are checked (token None: no auth)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        hooks = {"response": [self.hook]}
        return httpx.Client(base_url=url, headers=headers, event_hooks=hooks, **kwargs)
