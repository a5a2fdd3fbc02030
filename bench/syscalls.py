"""Counts the file-system system calls a running process makes, with strace attached to it by PID.

What a delivery costs in fsyncs and new files is measured, not guessed: `traced(pid)` attaches
`strace -f` to the process and all its threads, the caller sends deliveries, and on leaving
the block strace detaches; `FileCalls` then holds the counts from strace's raw trace.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

TRACED = "fsync,fdatasync,openat,open,creat,link,linkat,rename,renameat,renameat2,mkdir,unlink,unlinkat"
ATTACH_TIMEOUT = 10
# One traced call as strace -f writes it: "PID  name(args" (the rest may follow on a "resumed" line).
CALL = re.compile(r"^\d+\s+(\w+)\((.*)$")


class TraceFailed(Exception):
    """strace is missing, could not attach, or exited early."""


@dataclass
class FileCalls:
    """How many of each kind of file-system call a process made."""

    fsyncs: int = 0  # fsync and fdatasync, files and folders alike
    files_created: int = 0  # open/openat with O_CREAT or O_TMPFILE, and creat
    links: int = 0
    renames: int = 0
    unlinks: int = 0
    mkdirs: int = 0

    def per(self, count: int) -> dict[str, float]:
        return {item.name: getattr(self, item.name) / count for item in fields(self)}


def count_file_calls(trace: str) -> FileCalls:
    """The counts in a raw `strace -f` trace (one call per line, interrupted calls counted once)."""
    calls = FileCalls()
    for line in trace.splitlines():
        match = CALL.match(line)
        if not match:
            continue
        name, arguments = match.groups()
        if name in ("fsync", "fdatasync"):
            calls.fsyncs += 1
        elif name == "creat" or (name in ("open", "openat") and re.search(r"\bO_(CREAT|TMPFILE)\b", arguments)):
            calls.files_created += 1
        elif name in ("link", "linkat"):
            calls.links += 1
        elif name.startswith("rename"):
            calls.renames += 1
        elif name in ("unlink", "unlinkat"):
            calls.unlinks += 1
        elif name == "mkdir":
            calls.mkdirs += 1
    return calls


@contextlib.contextmanager
def traced(pid: int):
    """Attach strace to `pid` (all threads) for the block; yields a FileCalls filled in when the block ends."""
    if not shutil.which("strace"):
        raise TraceFailed("strace is not installed: run scripts/bootstrap --test")
    calls = FileCalls()
    with tempfile.TemporaryDirectory(prefix="inbox-strace-") as folder:
        output = Path(folder) / "trace"
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", f"trace={TRACED}", "-o", str(output), "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_attached(pid, tracer)
            yield calls
        finally:
            tracer.send_signal(signal.SIGINT)  # strace detaches and leaves the process running
            _, errors = tracer.communicate(timeout=ATTACH_TIMEOUT)
        if tracer.returncode not in (0, -signal.SIGINT, 128 + signal.SIGINT):
            raise TraceFailed(f"strace exited with {tracer.returncode}: {errors.decode(errors='replace')[-500:]}")
        counted = count_file_calls(output.read_text(errors="replace"))
        for item in fields(FileCalls):
            setattr(calls, item.name, getattr(counted, item.name))


def _wait_attached(pid: int, tracer: subprocess.Popen) -> None:
    """Return once every thread of `pid` is traced by `tracer`; calls made before would be missed."""
    deadline = time.monotonic() + ATTACH_TIMEOUT
    while time.monotonic() < deadline:
        if tracer.poll() is not None:
            raise TraceFailed(
                f"strace could not attach to {pid} (it needs ptrace rights: call bench.traceable.allow_tracing() in "
                f"that process, or run as root): {tracer.stderr.read().decode(errors='replace')}"
            )
        threads = list(Path(f"/proc/{pid}/task").iterdir())
        if threads and all(_tracer_of(thread) == tracer.pid for thread in threads):
            return
        time.sleep(0.05)
    raise TraceFailed(f"strace did not attach to {pid} within {ATTACH_TIMEOUT} s")


def _tracer_of(thread: Path) -> int:
    for line in (thread / "status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return 0
