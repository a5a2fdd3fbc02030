"""Real storage servers on 127.0.0.1 for the provider tests: moto (S3), Azurite (Azure Blob), OpenStack Swift.

Each server starts once per test session on a free port, with its data under a
tmp_path_factory folder, is waited for with a bounded timeout, and is stopped by the
PIDs recorded at launch (fixture teardown, and atexit as a backstop). A missing binary
fails the test with the command that installs it: these tests are never skipped.

`tcp_link` puts a forwarder between the app and a server that a test can cut and
restore: a real connection failure in the middle of a message, without stopping a server.
"""
from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AZURITE = ROOT / ".cache" / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
SWIFT_BIN = ROOT / ".cache" / "swift" / "bin"
INSTALL_HINT = "run `scripts/bootstrap --test` to install the test storage servers"
START_TIMEOUT = 30

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SWIFT_USER, SWIFT_KEY = "test:tester", "testing"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: {INSTALL_HINT}", pytrace=False)
    return path


@dataclass
class Server:
    """Processes launched for one server; stopped by their PIDs."""

    name: str
    port: int
    folder: Path
    processes: list = field(default_factory=list)

    def launch(self, log_name: str, *command, env=None, cwd=None) -> None:
        """Start `command` (in `env`, the whole environment, default ours), its output in the folder."""
        log = open(self.folder / f"{log_name}.log", "ab")
        self.processes.append(subprocess.Popen(
            [str(part) for part in command], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd or self.folder,
        ))
        log.close()

    def wait_until(self, ready) -> None:
        deadline = time.monotonic() + START_TIMEOUT
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
        self.fail(f"not ready after {START_TIMEOUT} s")

    def fail(self, what: str) -> None:
        self.stop()
        logs = "".join(f"\n--- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                       for log in sorted(self.folder.glob("*.log")))
        pytest.fail(f"{self.name} {what}; files in {self.folder}{logs}", pytrace=False)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def _serve(tmp_path_factory, name: str, start) -> Server:
    server = Server(name, free_port(), tmp_path_factory.mktemp(name))
    atexit.register(server.stop)
    try:
        start(server)
    except BaseException:
        server.stop()
        raise
    return server


def _answers(url: str) -> bool:
    requests.get(url, timeout=2)  # any HTTP answer means it is listening and parsing
    return True


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's S3 server (protocol only: it checks neither signatures nor ACLs)."""
    moto = require(BIN / "moto_server", "moto_server")

    def start(server):
        server.launch("moto", moto, "-H", "127.0.0.1", "-p", server.port)
        server.wait_until(lambda: _answers(f"http://127.0.0.1:{server.port}/"))

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
            "azurite", node, main, "--blobHost", "127.0.0.1", "--blobPort", server.port, "--location", server.folder / "data",
            "--disableTelemetry", "--silent",
        )
        server.wait_until(lambda: _answers(f"http://127.0.0.1:{server.port}/{AZURITE_ACCOUNT}?comp=list"))

    server = _serve(tmp_path_factory, "azurite", start)
    yield server
    server.stop()


# tempauth keeps its tokens in a cache; this dict-backed stand-in serves one proxy process.
SWIFT_CACHE_FILTER = '''
class DictCache:
    def __init__(self):
        self.data = {}

    def get(self, key, raise_on_error=False):
        return self.data.get(key)

    def set(self, key, value, serialize=True, time=0, min_compress_len=0, raise_on_error=False):
        self.data[key] = value

    def incr(self, key, delta=1, time=0):
        self.data[key] = int(self.data.get(key) or 0) + delta
        return self.data[key]

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -delta, time)

    def delete(self, key, server_key=None):
        self.data.pop(key, None)

    def get_multi(self, keys, server_key):
        return [self.data.get(key) for key in keys]

    def set_multi(self, mapping, server_key, serialize=True, time=0, min_compress_len=0):
        self.data.update(mapping)


def filter_factory(global_conf, **local_conf):
    cache = DictCache()

    def wrap(app):
        def middleware(env, start_response):
            env["swift.cache"] = cache
            return app(env, start_response)
        return middleware
    return wrap
'''

SWIFT_RINGS = '''
import sys
from swift.common.ring import RingBuilder
for kind, port in zip(("account", "container", "object"), sys.argv[2:]):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1", "weight": 1})
    builder.rebalance()
    builder.save(f"{sys.argv[1]}/{kind}.builder")
    builder.get_ring().save(f"{sys.argv[1]}/{kind}.ring.gz")
'''


def _write_swift_config(folder: Path, proxy_port: int, ports: dict) -> None:
    (folder / "d1").mkdir()
    (folder / "inbox_test_cache.py").write_text(SWIFT_CACHE_FILTER)
    (folder / "swift.conf").write_text(textwrap.dedent("""
        [swift-hash]
        swift_hash_path_suffix = inbox-tests
        swift_hash_path_prefix = inbox-tests
        [storage-policy:0]
        name = default
        default = yes
    """))
    common = f"bind_ip = 127.0.0.1\nworkers = 0\nuser = {pwd.getpwuid(os.getuid()).pw_name}\nswift_dir = {folder}\n"
    for kind, port in ports.items():
        (folder / f"{kind}-server.conf").write_text(
            f"[DEFAULT]\n{common}bind_port = {port}\ndevices = {folder}\nmount_check = false\n"
            f"[pipeline:main]\npipeline = {kind}-server\n[app:{kind}-server]\nuse = egg:swift#{kind}\n"
        )
    (folder / "proxy-server.conf").write_text(f"[DEFAULT]\n{common}bind_port = {proxy_port}\n" + textwrap.dedent(f"""
        [pipeline:main]
        pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats tempauth copy dlo slo proxy-logging proxy-server
        [app:proxy-server]
        use = egg:swift#proxy
        account_autocreate = true
        [filter:cache]
        paste.filter_factory = inbox_test_cache:filter_factory
        [filter:tempauth]
        use = egg:swift#tempauth
        user_test_tester = {SWIFT_KEY} .admin
        [filter:catch_errors]
        use = egg:swift#catch_errors
        [filter:gatekeeper]
        use = egg:swift#gatekeeper
        [filter:healthcheck]
        use = egg:swift#healthcheck
        [filter:proxy-logging]
        use = egg:swift#proxy_logging
        [filter:listing_formats]
        use = egg:swift#listing_formats
        [filter:copy]
        use = egg:swift#copy
        [filter:dlo]
        use = egg:swift#dlo
        [filter:slo]
        use = egg:swift#slo
    """))


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
            [SWIFT_BIN / "python", "-c", SWIFT_RINGS, folder, *map(str, ports.values())],
            capture_output=True, text=True, timeout=START_TIMEOUT,
        )
        if rings.returncode:
            pytest.fail(f"building Swift's rings failed ({INSTALL_HINT}):\n{rings.stderr[-2000:]}", pytrace=False)
        for kind in (*ports, "proxy"):
            server.launch(kind, SWIFT_BIN / f"swift-{kind}-server", folder / f"{kind}-server.conf", "--verbose",
                          env={**os.environ, "PYTHONPATH": str(folder)})  # --verbose: log to the console (the log file)
        server.wait_until(lambda: all(_listening(port) for port in ports.values())
                          and requests.get(f"http://127.0.0.1:{server.port}/healthcheck", timeout=2).ok)

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
    """Forwards 127.0.0.1:port to a server until cut: then every connection is dropped on arrival."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
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

    def restore(self) -> None:
        self.up = True

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
