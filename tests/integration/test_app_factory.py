"""`leadsync serve --processes N` builds each process's app from the environment, with or
without a worker by the factory it names (no flag travels through the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsync.app import app_with_worker, app_without_worker
from leadsync.web.context import AppContext


@pytest.mark.parametrize("with_worker", [True, False])
async def test_each_factory_reads_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_worker: bool
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/factory.db")
    monkeypatch.setenv("LEADSYNC_INTERNAL_TOKEN", "factory-internal-token")

    app = app_with_worker() if with_worker else app_without_worker()

    async with app.router.lifespan_context(app):
        ctx: AppContext = app.state.ctx
        assert str(ctx.engine.url).endswith("factory.db")
        assert ctx.settings.internal_token is not None
        # With a worker the wake-up hook is the worker's; without, the lifespan keeps the no-op.
        assert (getattr(ctx.wake_worker, "__self__", None) is not None) is with_worker
