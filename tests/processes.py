"""Starts server processes on 127.0.0.1 and stops them by their PIDs: for the tests and bench/bench.py.

Every wait is bounded; a process that exits or never gets ready raises ServerFailed with the
last lines of its logs. Nothing here depends on pytest, so the benchmark uses it as is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

START_TIMEOUT = 30
STOP_TIMEOUT = 10
# The service's settings: a server started for a test or the benchmark gets only the ones it is given.
SETTING_PREFIXES = ("MAILGUN_", "STORAGE_", "INBOX_")


class ServerFailed(Exception):
    """A server process exited while starting or did not get ready in time."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrubbed_environ(**settings: str) -> dict[str, str]:
    """This process's environment without any of the service's settings, plus `settings`."""
    return {**{name: value for name, value in os.environ.items() if not name.startswith(SETTING_PREFIXES)}, **settings}


def answers_http(url: str, timeout: float = 2) -> bool:
    """True once `url` gives any HTTP answer: the server is listening and parsing."""
    requests.get(url, timeout=timeout)
    return True


@dataclass
class Server:
    """Processes launched for one server, their logs in `folder`; stopped by their PIDs."""

    name: str
    port: int
    folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def launch(self, log_name: str, *command, env=None, cwd=None) -> subprocess.Popen:
        """Start `command` (in `env`, the whole environment, default ours), its output in the folder."""
        with open(self.folder / f"{log_name}.log", "ab") as log:
            process = subprocess.Popen(
                [str(part) for part in command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd or self.folder,
            )
        self.processes.append(process)
        return process

    def wait_until(self, ready, timeout: float = START_TIMEOUT) -> None:
        """Poll `ready()` until it is true; stop everything and raise ServerFailed on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    self.fail(f"exited with status {process.returncode} while starting")
            try:
                if ready():
                    return
            except (OSError, requests.RequestException):
                pass
            time.sleep(0.1)
        self.fail(f"not ready after {timeout} s")

    def fail(self, what: str) -> None:
        self.stop()
        logs = "".join(
            f"\n--- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.folder.glob("*.log"))
        )
        raise ServerFailed(f"{self.name} {what}; files in {self.folder}{logs}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


@contextlib.contextmanager
def running(command, *, port: int, logs: Path, env=None, cwd=None, ready_path="/healthz"):
    """Start `command`, wait until it answers on 127.0.0.1:port, stop it by its PID afterwards."""
    server = Server(Path(command[0]).name, port, logs)
    try:
        server.launch("server", *command, env=env, cwd=cwd)
        server.wait_until(lambda: requests.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1))
        yield server
    finally:
        server.stop()
