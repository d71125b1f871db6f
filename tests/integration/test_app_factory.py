"""`leadsync serve --processes N` builds each process's app from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsync.app import SERVE_WORKER_ENV, app_from_environment
from leadsync.web.context import AppContext


@pytest.mark.parametrize(("flag", "with_worker"), [("1", True), ("0", False)])
async def test_the_factory_reads_settings_and_the_worker_flag_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, with_worker: bool
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/factory.db")
    monkeypatch.setenv("LEADSYNC_INTERNAL_TOKEN", "factory-internal-token")
    monkeypatch.setenv(SERVE_WORKER_ENV, flag)

    app = app_from_environment()

    async with app.router.lifespan_context(app):
        ctx: AppContext = app.state.ctx
        assert str(ctx.engine.url).endswith("factory.db")
        assert ctx.settings.internal_token is not None
        # With a worker the wake-up hook is the worker's; without, the lifespan keeps the no-op.
        assert (getattr(ctx.wake_worker, "__self__", None) is not None) is with_worker
