"""The sandbox-backed `HubSpotServer`: the scenario tests run against it over real HTTP.

`SandboxHubSpot` wraps a `leadsync.sandbox` served by uvicorn on a free loopback port. The
client reaches it with no transport (a real TCP connection), and the scenario tests program
it only through its control API: `POST /_sandbox/inject` for a canned answer and
`PATCH /_sandbox/config` for the batch mode, just as a demo or an operator would.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from leadsync.sandbox import RunningSandbox, SandboxConfig

# docs/hubspot.md leaves unconfirmed whether one invalid batch input fails the whole batch (400) or
# only itself (207); the sandbox calls the two modes `whole` and `per-input`.
_BATCH_MODES = {"207": "per-input", "400": "whole"}


@functools.cache
def _tls() -> ssl.SSLContext:
    # The control API is plain HTTP, but every httpx client builds a TLS context (certifi,
    # ~0.1 s); one shared context keeps a test's control calls cheap.
    return ssl.create_default_context()


@dataclass
class SandboxHubSpot:
    """A running sandbox seen through the `HubSpotServer` interface."""

    sandbox: RunningSandbox
    base_url: str = field(init=False)
    token: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = self.sandbox.url
        self.token = self.sandbox.token

    @classmethod
    def fresh(cls, sandbox: RunningSandbox) -> SandboxHubSpot:
        """Return the sandbox with its default config, no contacts and nothing injected."""
        sandbox.state.config = SandboxConfig()
        sandbox.state.reset()
        return cls(sandbox)

    @property
    def transport(self) -> None:
        """Return None: the client connects over real HTTP."""
        return None

    async def inject(
        self,
        *,
        status: int,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> None:
        """Answer the next CRM request with this response (POST /_sandbox/inject)."""
        body: dict[str, Any] = {"status": status, "headers": headers or {}}
        if content is not None:
            body["content"] = content.decode()
        elif json is not None:
            body["json"] = json
        await self._control("POST", "/inject", body)

    async def set_batch_invalid_mode(self, mode: Literal["207", "400"]) -> None:
        """Choose how an invalid batch input fails (PATCH /_sandbox/config invalid_batch)."""
        await self._control("PATCH", "/config", {"invalid_batch": _BATCH_MODES[mode]})

    async def _control(self, method: str, path: str, body: dict[str, Any]) -> None:
        control = f"{self.base_url}/_sandbox"
        async with httpx.AsyncClient(base_url=control, timeout=10, verify=_tls()) as http:
            response = await http.request(method, path, json=body)
        assert response.is_success, f"{method} /_sandbox{path}: {response.text}"
