"""A local HubSpot CRM v3 contacts API, faults included, for tests, benchmarks and the demo."""

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
