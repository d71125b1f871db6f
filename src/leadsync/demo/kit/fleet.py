"""The fleet: real `leadsync` processes (workers, a server) started, killed and stopped at will.

Each process runs the console script with exactly the leadsync settings it is given (the
parent's DATABASE_URL, HUBSPOT_* and LEADSYNC_* never leak in), logs JSON to a file of its own,
and can be SIGKILLed, as a crash or an OOM killer would, and started again under its name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from leadsync.config import Settings, env_name

# What a leadsync process reads; everything else of the parent's environment is passed on.
_SETTINGS_PREFIXES = ("DATABASE_URL", "HUBSPOT_", "LEADSYNC_")


def leadsync_env(**settings: object) -> dict[str, str]:
    """Return the environment variables that give a leadsync process these Settings fields.

    `leadsync_env(database_url=url, hubspot_rate_limit="100/10s", lease_seconds=8)` gives
    DATABASE_URL, HUBSPOT_RATE_LIMIT and LEADSYNC_LEASE_SECONDS; an unknown field is an error.
    """
    unknown = sorted(set(settings) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"not leadsync settings: {unknown}")
    return {env_name(name): str(value) for name, value in settings.items()}


def leadsync_executable() -> str:
    """Return the `leadsync` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "leadsync"
    if beside.exists():
        return str(beside)
    found = shutil.which("leadsync")
    if found is None:
        raise RuntimeError("the leadsync console script is not installed")
    return found


@dataclass
class LeadsyncProcess:
    """One `leadsync` process and the file its JSON log goes to."""

    name: str
    args: tuple[str, ...]  # the command's arguments: ("worker",), ("serve", "--port", "8000")
    env: Mapping[str, str] = field(repr=False)  # its leadsync settings
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: IO[bytes] | None = field(repr=False, default=None)

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.poll() is None

    def log_text(self) -> str:
        """Return everything the process has logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def logged(self, event: str) -> int:
        """Return how many log lines carry this event name."""
        needle = f'"event": "{event}"'
        return sum(needle in line for line in self.log_text().splitlines())

    def signal(self, sig: int) -> None:
        """Send a signal to the process if it is still running."""
        if self.running:
            self.process.send_signal(sig)

    def reap(self, *, timeout: float = 15.0) -> None:
        """Wait for the process to exit (SIGKILL after `timeout` s) and close its log."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the process, as a crash or an OOM killer would, and reap it."""
        self.signal(signal.SIGKILL)
        self.reap()


class Fleet:
    """leadsync processes by name, each logging to `<name>.log` in `log_dir` (`<name>.2.log`
    and so on when a name is started again); `stop()`, or leaving the `with`, stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.current: dict[str, LeadsyncProcess] = {}  # the latest process of each name
        self.started: list[LeadsyncProcess] = []  # every process, killed ones included
        self.kills = 0
        self._starts: Counter[str] = Counter()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, name: str, env: Mapping[str, str], *args: str) -> LeadsyncProcess:
        """Start `leadsync <args>` (default: `leadsync worker`) with exactly these settings."""
        args = args or ("worker",)
        self._starts[name] += 1
        count = self._starts[name]
        log_path = self.log_dir / (f"{name}.log" if count == 1 else f"{name}.{count}.log")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
        log_file = log_path.open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [leadsync_executable(), *args],
            env={**inherited, "LEADSYNC_LOG_FORMAT": "json", **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        started = LeadsyncProcess(name, args, env, process, log_path, log_file)
        self.current[name] = started
        self.started.append(started)
        return started

    def kill(self, name: str) -> LeadsyncProcess:
        """SIGKILL the process of this name and reap it."""
        victim = self.current[name]
        victim.kill()
        self.kills += 1
        return victim

    def restart(self, name: str) -> LeadsyncProcess:
        """SIGKILL the process of this name, then start it again as it was started."""
        victim = self.kill(name)
        return self.start(name, victim.env, *victim.args)

    def names(self, *, prefix: str = "") -> list[str]:
        """Return the names started so far that begin with `prefix`, in starting order."""
        return [name for name in self.current if name.startswith(prefix)]

    def log_paths(self) -> Iterator[Path]:
        """Yield the log file of every process started, killed ones included."""
        return (process.log_path for process in self.started)

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM every process at once (a worker drains and releases its leases), reap each."""
        for process in self.started:
            process.signal(signal.SIGTERM)
        for process in self.started:
            with contextlib.suppress(Exception):
                process.reap(timeout=timeout)
