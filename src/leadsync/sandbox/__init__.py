"""A local HubSpot CRM v3 contacts API, faults included, for tests, benchmarks and the demo.

The names below are loaded on first use: every `leadsync` command registers the `sandbox`
command, and only a running sandbox needs its web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadsync.sandbox.app import create_sandbox_app
    from leadsync.sandbox.clock import ManualClock
    from leadsync.sandbox.server import (
        RunningSandbox,
        SandboxProcess,
        sandbox_in_loop,
        sandbox_in_process,
        sandbox_in_thread,
    )
    from leadsync.sandbox.settings import DEFAULT_TOKEN, SandboxConfig
    from leadsync.sandbox.state import SandboxState, sandbox_state

_WHERE = {
    "create_sandbox_app": "app",
    "ManualClock": "clock",
    "RunningSandbox": "server",
    "SandboxProcess": "server",
    "sandbox_in_loop": "server",
    "sandbox_in_process": "server",
    "sandbox_in_thread": "server",
    "DEFAULT_TOKEN": "settings",
    "SandboxConfig": "settings",
    "SandboxState": "state",
    "sandbox_state": "state",
}

__all__ = [
    "DEFAULT_TOKEN",
    "ManualClock",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxProcess",
    "SandboxState",
    "create_sandbox_app",
    "sandbox_in_loop",
    "sandbox_in_process",
    "sandbox_in_thread",
    "sandbox_state",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
