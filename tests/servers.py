"""Fixtures (a plugin, registered in the root conftest.py) for real storage servers on 127.0.0.1: moto (S3),
Azurite (Azure Blob), OpenStack Swift (its config: the files in tests/swift), and a stand-in for
Mailgun's Messages API (tests/mailgun_standin.py).

Each server starts once per test session on a free port, with its data under a
tmp_path_factory folder, is waited for with a bounded timeout, and is stopped by the
PIDs recorded at launch (fixture teardown, and atexit as a backstop). A missing binary
fails the test with the command that installs it: these tests are never skipped.

`tcp_link` puts a forwarder between the app and a server that a test can cut, hang and
restore: a real connection failure (or silence) in the middle of a message, without stopping a server.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pytest
import requests

from tests.processes import START_TIMEOUT, Server, ServerFailed, answers_http, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AZURITE = ROOT / ".cache" / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
SWIFT_BIN = ROOT / ".cache" / "swift" / "bin"
INSTALL_HINT = "run `scripts/bootstrap --test` to install the test storage servers"
SWIFT_CONFIG = Path(__file__).resolve().parent / "swift"

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SWIFT_USER, SWIFT_KEY = "test:tester", "testing"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: {INSTALL_HINT}", pytrace=False)
    return path


def _serve(tmp_path_factory, name: str, start) -> Server:
    server = Server(name, free_port(), tmp_path_factory.mktemp(name))
    atexit.register(server.stop)
    try:
        start(server)
    except ServerFailed as error:
        pytest.fail(str(error), pytrace=False)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's S3 server (protocol only: it checks neither signatures nor ACLs)."""
    moto = require(BIN / "moto_server", "moto_server")

    def start(server):
        server.launch("moto", moto, "-H", "127.0.0.1", "-p", server.port)
        server.wait_until(lambda: answers_http(f"http://127.0.0.1:{server.port}/"))

    server = _serve(tmp_path_factory, "moto", start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite's Blob service: checks Shared Key signatures and container public access."""
    main = require(AZURITE, "Azurite")
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: {INSTALL_HINT}", pytrace=False)

    def start(server):
        server.launch(
            "azurite",
            node,
            main,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            server.port,
            "--location",
            server.folder / "data",
            "--disableTelemetry",
            "--silent",
        )
        server.wait_until(lambda: answers_http(f"http://127.0.0.1:{server.port}/{AZURITE_ACCOUNT}?comp=list"))

    server = _serve(tmp_path_factory, "azurite", start)
    yield server
    server.stop()


def _write_swift_config(folder: Path, proxy_port: int, ports: dict) -> None:
    """Fill tests/swift's templates for this server's folder and ports."""
    (folder / "d1").mkdir()
    shutil.copy(SWIFT_CONFIG / "swift.conf", folder)
    common = {"user": pwd.getpwuid(os.getuid()).pw_name, "folder": folder}
    storage = Template((SWIFT_CONFIG / "storage-server.conf").read_text())
    for kind, port in ports.items():
        (folder / f"{kind}-server.conf").write_text(storage.substitute(common, kind=kind, port=port))
    proxy = Template((SWIFT_CONFIG / "proxy-server.conf").read_text())
    (folder / "proxy-server.conf").write_text(proxy.substitute(common, port=proxy_port, key=SWIFT_KEY))


def _listening(port: int) -> bool:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return True


@pytest.fixture(scope="session")
def swift(tmp_path_factory):
    """A single-node OpenStack Swift with tempauth: checks tokens and container ACLs."""
    for program in ("python", "swift-proxy-server", "swift-account-server"):
        require(SWIFT_BIN / program, "OpenStack Swift")

    def start(server):
        folder = server.folder
        ports = {kind: free_port() for kind in ("account", "container", "object")}
        _write_swift_config(folder, server.port, ports)
        rings = subprocess.run(
            [SWIFT_BIN / "python", SWIFT_CONFIG / "build_rings.py", folder, *map(str, ports.values())],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
        if rings.returncode:
            pytest.fail(f"building Swift's rings failed ({INSTALL_HINT}):\n{rings.stderr[-2000:]}", pytrace=False)
        for kind in (*ports, "proxy"):  # --verbose: log to the console (the log file)
            server.launch(
                kind,
                SWIFT_BIN / f"swift-{kind}-server",
                folder / f"{kind}-server.conf",
                "--verbose",
                env={**os.environ, "PYTHONPATH": str(SWIFT_CONFIG)},
            )
        server.wait_until(
            lambda: (
                all(_listening(port) for port in ports.values())
                and requests.get(f"http://127.0.0.1:{server.port}/healthcheck", timeout=2).ok
            )
        )

    server = _serve(tmp_path_factory, "swift", start)
    yield server
    server.stop()


def _hang_up(*ends: socket.socket) -> None:
    for end in ends:
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        end.close()


class TcpLink:
    """Forwards 127.0.0.1:port to a server until cut (every connection dropped on arrival) or hung
    (connections stay open, nothing sent through them arrives)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up, self.hanging = True, False
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.hanging:
                    target.sendall(data)
        except OSError:
            pass
        with self.lock:
            self.sockets.difference_update((source, target))
        _hang_up(source, target)

    def cut(self) -> None:
        self.up = False
        with self.lock:
            ends, self.sockets = list(self.sockets), set()
        _hang_up(*ends)

    def hang(self) -> None:
        self.hanging = True

    def restore(self) -> None:
        self.up, self.hanging = True, False

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture
def tcp_link():
    """tcp_link(port) -> a TcpLink to that server, closed after the test."""
    links = []

    def open_link(port: int) -> TcpLink:
        links.append(TcpLink(port))
        return links[-1]

    yield open_link
    for link in links:
        link.close()


STANDIN = Path(__file__).with_name("mailgun_standin.py")
MAILGUN_API_KEY = "key-standin-0123456789"
MAILGUN_DOMAIN = "mg.example.com"


@dataclass
class MailgunAPI:
    """The running stand-in: where it is, the key and domain it accepts, and its controls."""

    base: str
    api_url: str
    api_key: str = MAILGUN_API_KEY
    domain: str = MAILGUN_DOMAIN

    def sent(self) -> list[dict]:
        """The message posts received since the test began: {"domain", "id", "fields", "connection"}."""
        return requests.get(f"{self.base}/_requests", timeout=5).json()

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `count` message posts with `status` (and a Retry-After of that many seconds)."""
        params = {"status": status, "count": count} | ({"retry_after": retry_after} if retry_after else {})
        requests.post(f"{self.base}/_fail", params=params, timeout=5).raise_for_status()

    def delay(self, seconds: float) -> None:
        """Answer each later message post after `seconds` (a slow Mailgun)."""
        requests.post(f"{self.base}/_delay", params={"seconds": seconds}, timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(f"{self.base}/_reset", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def mailgun_standin(tmp_path_factory):
    """A stand-in for Mailgun's Messages API (tests/mailgun_standin.py): checks the key, records each post."""

    def start(server):
        server.launch("standin", sys.executable, STANDIN, server.port, MAILGUN_API_KEY, MAILGUN_DOMAIN)
        server.wait_until(lambda: requests.get(f"http://127.0.0.1:{server.port}/_requests", timeout=1).ok)

    server = _serve(tmp_path_factory, "mailgun-standin", start)
    base = f"http://127.0.0.1:{server.port}"
    yield MailgunAPI(base=base, api_url=f"{base}/v3")
    server.stop()


@pytest.fixture
def mailgun_api(mailgun_standin) -> MailgunAPI:
    """The Messages API stand-in, with no requests recorded and no failures pending."""
    mailgun_standin.reset()
    return mailgun_standin
