"""Run the `leadsync` command as an operator does: a process of its own, its exit status and
its output."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

LEADSYNC = str(Path(sys.executable).with_name("leadsync"))


async def leadsync(
    db_url: str, *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `leadsync ARGS` on the database at `db_url`; return (exit status, stdout, stderr).

    `env` adds variables (e.g. LEADSYNC_ERASURE_KEY) to the cleaned environment.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSYNC_", "HUBSPOT_"))}
    clean |= {"DATABASE_URL": db_url, "LEADSYNC_LOG_LEVEL": "WARNING", **(env or {})}
    process = await asyncio.create_subprocess_exec(
        LEADSYNC,
        *args,
        env=clean,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()
