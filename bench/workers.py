"""Starts the bench's WSGI apps under gunicorn and reads what their workers use from /proc.

Each app runs under its own gunicorn master on a free 127.0.0.1 port (tests.processes.Server,
stopped by PID); the workers' CPU time, RSS, peak RSS and disk writes come from /proc.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests

from tests.processes import Server, ServerFailed, free_port

BENCH_DIR = Path(__file__).resolve().parent


def start_gunicorn(app: str, workers: int, env: dict, workdir: Path) -> Server:
    """A gunicorn master on a free port, returned once /healthz answers and all its workers run."""
    server = Server(f"gunicorn {app}", free_port(), workdir)
    command = [
        Path(sys.executable).with_name("gunicorn"),
        app,
        "--pythonpath",
        BENCH_DIR,
        "--bind",
        f"127.0.0.1:{server.port}",
        "--workers",
        workers,
        "--worker-class",
        "sync",
        "--timeout",
        "120",
        "--no-control-socket",
        "--config",
        BENCH_DIR / "traceable.py",
    ]
    # Our own config file (workers strace may attach to), never the project's gunicorn.conf.py.
    master = server.launch(f"{app.split(':')[0]}-{workers}w-{server.port}", *command, env=env, cwd=workdir)
    try:
        server.wait_until(
            lambda: (
                requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).ok
                and len(children(master.pid)) == workers
            )
        )
    except ServerFailed as error:
        raise SystemExit(f"bench: {error}") from None
    return server


def worker_pids(server: Server) -> list[int]:
    """The worker processes of a gunicorn master started by start_gunicorn (the master stops them)."""
    return children(server.processes[0].pid)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
        except OSError:
            pass
    return found


def proc_kib(pid: int, field: str) -> int:
    """VmRSS or VmHWM of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, all its threads (schedstat, in nanoseconds)."""
    total = 0
    for thread in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{thread}/schedstat").read_text().split()[0])
        except OSError:
            pass  # the thread ended
    return total / 1e9


def reset_peak(pid: int) -> bool:
    """Make VmHWM start again from the current RSS (Linux clear_refs 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def bytes_written(pid: int) -> int:
    """Bytes the process has dirtied in the page cache (what will go to disk)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise KeyError("write_bytes")
