"""The sandbox's whole mutable state, shared by the gate, the routes and the control API."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI

from leadsync.sandbox.blocklist import Blocklist, GdprDeletions
from leadsync.sandbox.clock import Clock
from leadsync.sandbox.faults import FaultInjector, HangRegistry
from leadsync.sandbox.inject import InjectionQueue
from leadsync.sandbox.inputerrors import InputErrorBook
from leadsync.sandbox.ratelimit import SECONDLY, RateLimiter
from leadsync.sandbox.requestlog import RequestLog
from leadsync.sandbox.settings import SandboxConfig
from leadsync.sandbox.stats import Stats
from leadsync.sandbox.store import ContactStore


class SandboxState:
    """Config, contacts, GDPR deletes and blocklist, limiters, faults, injections, request
    log and stats of one sandbox."""

    def __init__(self, *, config: SandboxConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.blocklist = Blocklist()
        self.gdpr_deletions = GdprDeletions()
        self.store = ContactStore(blocklist=self.blocklist)
        self.limiter = RateLimiter()
        # HubSpot limits search per account, so the sandbox uses one shared key for it.
        self.search_limiter = RateLimiter(policy=SECONDLY)
        self.faults = FaultInjector(seed=config.seed)
        self.hangs = HangRegistry()
        self.injections = InjectionQueue()
        self.input_errors = InputErrorBook()
        self.requests = RequestLog()
        self.stats = Stats()

    def reset(self) -> None:
        """Forget contacts, GDPR deletes, the blocklist, stats, the request log, limiter
        history and injections; replay the faults."""
        self.store.clear()
        self.blocklist.clear()
        self.gdpr_deletions.clear()
        self.injections.clear()
        self.input_errors.clear()
        self.requests.clear()
        self.stats.reset()
        self.limiter.reset()
        self.search_limiter.reset()
        self.faults.reseed(seed=self.config.seed)

    def update_config(self, changes: dict[str, Any]) -> SandboxConfig:
        """Apply a partial config change (tokens via add_tokens/revoke_tokens) and return it."""
        new = self.config.patched(changes)
        if "seed" in changes:
            self.faults.reseed(seed=new.seed)
        self.config = new
        return new


def sandbox_state(app: FastAPI) -> SandboxState:
    """Return the state of an app built by create_sandbox_app."""
    state = app.state.sandbox
    assert isinstance(state, SandboxState)
    return state
