"""Where the intake's CPU goes: py-spy on `leadsync serve --no-worker` under wrk, PostgreSQL.

One leadsync process and one ceiling process (bench/ceiling_app.py) on a scratch database,
wrk -t1 -c8 posting the ingest benchmark's lead. First, without the profiler, each server's
CPU per lead: its CPU time (/proc) over one wrk run divided by the leads it stored. Then
py-spy samples leadsync's Python frames during another wrk run, and the samples are summed
two ways:

- by layer: a sample counts for the innermost frame that belongs to a known package (frames
  of the standard library count for their caller, and time spent in C, e.g. a socket write
  or pydantic-core, for the Python frame that called it);
- by stage of the request: a sample counts for the innermost stage marker on its stack
  (pool checkout and pre-ping, BEGIN, INSERT/NOTIFY, COMMIT, body parsing, response, ...).
  SQLAlchemy's sync code runs in greenlets, whose stacks start at the session call
  (Session.execute, commit, close): such samples count for that call's stage.

Shares are of the samples in which the server thread was busy, i.e. of its CPU; the
microseconds are the share times the CPU per lead measured without the profiler.

Needs py-spy (`pip install py-spy`, run as root or with ptrace rights); it is not a
dependency of the project. The raw profile goes to a temporary file, removed unless --keep.

    python bench/intake_profile.py                     # writes its section of RESULTS.md
    python bench/intake_profile.py --seconds 20 --keep /tmp/intake.raw --no-write
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LEADSYNC,
    log,
    migrate,
    processes,
    scratch_postgres,
    service_env,
    table,
    write_results,
)
from ingest import Level, free_port, load_note, run_wrk, wait_http

HERE = Path(__file__).resolve().parent
CONNECTIONS = 8
OTHER = "other (under 1% each)"

# leadsync's own modules, in the layout before and after the src/ restructuring (web/, store/,
# usecases/). The stage patterns name leadsync's functions: check them when those move.
STRICT_JSON = r"\(leadsync/(web/)?strictjson\.py"
FIELD_RULES = r"\(leadsync/(leads/|usecases/)?(schemas|emails)\.py"
SIZE_LIMITS = r"\(leadsync/(app|(web/)?(headers|bodysize))\.py"
# (label, pattern on a frame "function (path:line)"). A sample counts for the innermost frame
# matching any pattern; when one frame matches several, the first pattern wins.
LAYERS = [
    (
        "greenlet hops (await_only, greenlet_spawn)",
        r"\(sqlalchemy/util/(_concurrency_py3k|concurrency)\.py",
    ),
    ("asyncpg (driver, socket writes)", r"\(asyncpg/"),
    ("SQLAlchemy asyncpg adapter", r"\(sqlalchemy/dialects/"),
    ("SQLAlchemy pool (checkout, pre-ping, return)", r"\(sqlalchemy/pool/"),
    ("SQLAlchemy session/ORM", r"\(sqlalchemy/(orm|ext)/"),
    ("SQLAlchemy Core/engine (execute, caches, results)", r"\(sqlalchemy/"),
    ("pydantic (validation, serialization)", r"\((pydantic|pydantic_core)/"),
    ("email_validator/idna", r"\((email_validator|idna)/"),
    ("leadsync strict JSON", STRICT_JSON),
    ("leadsync field rules", FIELD_RULES),
    ("leadsync size limits (middleware, HTTP head)", SIZE_LIMITS),
    ("prometheus_client", r"\(prometheus_client/"),
    ("logging/structlog", r"\((logging|structlog)/"),
    ("leadsync, other", r"\(leadsync/"),
    ("FastAPI (routing, dependencies, serialization)", r"\(fastapi/"),
    ("Starlette (middleware stack, request, response)", r"\(starlette/"),
    ("uvicorn + httptools (HTTP parse, response write)", r"\(uvicorn/"),
    ("event loop (uvloop in C: epoll, socket reads)", r"\(asyncio/"),
]
STAGES = [
    ("HTTP response write (uvicorn send)", r"^RequestResponseCycle\.send "),
    (
        "pool checkout + pre-ping (BEGIN, ';', ROLLBACK)",
        r"_async_ping |do_ping |pre_ping|_ConnectionFairy\._checkout |_ConnectionRecord|"
        r"QueuePool\._do_get |Pool\.connect ",
    ),
    ("BEGIN", r"_start_transaction "),
    (
        "COMMIT",
        r"Transaction\.(commit|__commit) |SessionTransaction\.commit |"
        r"^TransactionalContext\.__exit__ |AsyncSessionTransaction\.__aexit__ ",
    ),
    (
        "session close, connection back to the pool",
        r"Session\.close |AsyncSession\.__aexit__ |_ConnectionFairy\._checkin |_finalize_fairy ",
    ),
    (
        "response: Lead object, LeadOut, JSON",
        r"serialize_response |LeadOut|model_validate |Response\.(render|__init__) |"
        r"_declarative_constructor |dump_json ",
    ),
    (
        "INSERT + NOTIFY (values, SQLAlchemy execute)",
        r"^create_lead \(leadsync/leads/service\.py|^insert_lead |announce_new_leads |"
        r"^Session\.execute ",
    ),
    (
        "session setup (sessionmaker, begin)",
        r"async_sessionmaker\.__call__ |Session\.__init__ |Session\.begin |AsyncSession\.begin |"
        r"^transaction \(leadsync/(store/)?db\.py",
    ),
    ("body: strict JSON parse", rf"{STRICT_JSON}|^Request\.(body|json) "),
    (
        "body: LeadIn validation (pydantic, text rules, email)",
        rf"request_body_to_args |ModelField\.validate |{FIELD_RULES}",
    ),
    ("metrics counter + worker wake-up", r"\(prometheus_client/|wake_worker "),
    ("route handler, other", r"^create_lead \(leadsync/(leads/api|web/leads)\.py|^submit_lead "),
    ("FastAPI dependencies, routing, telemetry check", r"\(fastapi/"),
    ("middleware stack (Starlette, size limits)", rf"\(starlette/|{SIZE_LIMITS}"),
    (
        "HTTP parse (httptools callbacks)",
        r"HttpToolsProtocol\.(data_received|on_\w+|_\w+) |"
        r"BoundedHttpToolsProtocol",
    ),
    ("uvicorn ASGI glue (run_asgi, receive)", r"\(uvicorn/"),
    ("event loop (uvloop in C: epoll, socket reads)", r"\(asyncio/"),
]
NO_FRAME = "no Python frame (C only)"
UNMATCHED = "unattributed"


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    """Parse py-spy's raw format: `frame;frame;...;leaf count` per line, root first."""
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        frames, _, count = line.rstrip().rpartition(" ")
        stacks.append(([f.strip() for f in frames.split(";") if f.strip()], int(count)))
    return stacks


def classify(stacks: list[tuple[list[str], int]], rules: list[tuple[str, str]]) -> Counter[str]:
    """Count samples per label: the innermost frame matching a rule decides."""
    compiled = [(label, re.compile(pattern)) for label, pattern in rules]
    counts: Counter[str] = Counter()
    for frames, count in stacks:
        label = NO_FRAME if not frames else UNMATCHED
        for frame in reversed(frames):
            found = next((name for name, rule in compiled if rule.search(frame)), None)
            if found:
                label = found
                break
        counts[label] += count
    return counts


def shares(counts: Counter[str], *, cpu_us: float) -> list[tuple[str, str, str]]:
    """Rows (label, share, us/lead), largest first; labels under 1% are summed as one."""
    total = sum(counts.values())
    rows, small = [], 0
    for label, count in counts.most_common():
        if count / total < 0.01:
            small += count
            continue
        rows.append((label, f"{count / total:.0%}", f"{cpu_us * count / total:,.0f}"))
    if small:
        rows.append((OTHER, f"{small / total:.0%}", f"{cpu_us * small / total:,.0f}"))
    return rows


def top(rows: list[tuple[str, str, str]], count: int = 4) -> str:
    """The first rows as `label share`, for one line of prose."""
    return "; ".join(f"{label} {share}" for label, share, _ in rows[:count] if label != OTHER)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_lead(pid: int, url: str, *, seconds: int) -> tuple[float, Level]:
    """Run wrk at c=8; return the server's CPU microseconds per lead and wrk's figures."""
    before = cpu_seconds(pid)
    level = run_wrk(url, connections=CONNECTIONS, seconds=seconds)
    used = cpu_seconds(pid) - before
    return used * 1e6 / (level.rate * seconds), level


def py_spy() -> str:
    """Return the py-spy executable (PATH, or beside this Python)."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not found:
        raise SystemExit("py-spy is needed: pip install py-spy (not a project dependency)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="Length of each wrk run.")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second.")
    parser.add_argument("--keep", type=Path, help="Keep py-spy's raw profile at this path.")
    parser.add_argument("--no-write", action="store_true", help="Do not update RESULTS.md.")
    args = parser.parse_args()
    spy = py_spy()
    before = load_note()
    version = subprocess.run([spy, "--version"], capture_output=True, text=True).stdout.strip()
    with scratch_postgres("profile") as url:
        migrate(url)
        ours_port, ceiling_port = free_port(), free_port()
        commands = [
            [LEADSYNC, "serve", "--no-worker", "--port", str(ours_port)],
            [sys.executable, str(HERE / "ceiling_app.py"), url, str(ceiling_port), "1"],
        ]
        ours, ceiling = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{ceiling_port}"
        with processes(commands, env=service_env(url)) as running:
            wait_http(f"{ours}/healthz", running)
            wait_http(f"{ceiling}/healthz", running)
            log("warming up both servers for 2 s")
            for base in (ours, ceiling):
                run_wrk(f"{base}/leads", connections=CONNECTIONS, seconds=2)
            cpu: dict[str, float] = {}
            for name, proc, base in (
                ("leadsync", running[0], ours),
                ("ceiling", running[1], ceiling),
            ):
                log(f"CPU per lead of {name}, c={CONNECTIONS}, {args.seconds} s ...")
                cpu[name], level = cpu_per_lead(proc.pid, f"{base}/leads", seconds=args.seconds)
                log(f"  {name}: {cpu[name]:,.0f} us CPU per lead at {level.rate:,.0f} leads/s")
            raw = args.keep or Path(tempfile.mkstemp(suffix=".raw")[1])
            log(f"py-spy on leadsync for {args.seconds} s at {args.rate} Hz ({version}) ...")
            profiled: list[Level] = []
            load = threading.Thread(
                target=lambda: profiled.append(
                    run_wrk(f"{ours}/leads", connections=CONNECTIONS, seconds=args.seconds + 2)
                )
            )
            load.start()
            try:
                subprocess.run(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(running[0].pid),
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(args.seconds),
                        "--format",
                        "raw",
                        "--output",
                        str(raw),
                    ],
                    check=True,
                    capture_output=True,
                )
            finally:
                load.join()
            stacks = read_raw(raw)
            if not args.keep:
                raw.unlink()
    samples = sum(count for _, count in stacks)
    busy = samples / (args.rate * args.seconds)
    log(f"  {samples} samples (thread busy {busy:.0%} of the time), {profiled[0].rate:,.0f}/s")
    layers = shares(classify(stacks, LAYERS), cpu_us=cpu["leadsync"])
    stages = shares(classify(stacks, STAGES), cpu_us=cpu["leadsync"])
    text = "\n".join(
        [
            f"One `leadsync serve --no-worker` process on PostgreSQL under wrk -t1 -c{CONNECTIONS} "
            f"(the ingest body), sampled by {version} (Python frames, {args.rate} Hz, "
            f"{args.seconds} s, {samples} samples of the busy thread, which was busy "
            f"{busy:.0%} of the time; {profiled[0].rate:,.0f} leads/s while profiled). Shares "
            "are of those samples, i.e. of the server's CPU; time in C counts for its Python "
            "caller.",
            "",
            f"CPU per lead without the profiler, same run: leadsync **{cpu['leadsync']:,.0f} us**, "
            f"ceiling (bench/ceiling_app.py) **{cpu['ceiling']:,.0f} us** "
            f"({cpu['leadsync'] / cpu['ceiling']:.1f}x). {before}",
            "",
            f"Largest stages: {top(stages)}. Largest layers: {top(layers)}.",
            "",
            "By stage of the request (the innermost stage on the stack):",
            "",
            table(["stage", "share of CPU", "us per lead"], stages),
            "",
            "By layer (the innermost frame of a known package):",
            "",
            table(["layer", "share of CPU", "us per lead"], layers),
        ]
    )
    print("\n" + text)
    if not args.no_write:
        write_results("Intake: where the time goes (bench/intake_profile.py)", text)


if __name__ == "__main__":
    main()
