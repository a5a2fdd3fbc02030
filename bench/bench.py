"""What a delivery costs the service beyond reading its bytes (issue 5).

Starts under gunicorn (one sync worker each, 127.0.0.1, free ports) the service on a temporary
local store and bench/floor.py, an app that only reads and drops the body; sends both the same
signed Mailgun-shaped deliveries, round-robin (which one goes first alternates); prints the
median latency per case, the ratio service/floor, the worker's CPU time, its peak RSS growth
and disk writes during the 25 MiB deliveries, requests/s of a second run with 2 workers and 2
concurrent clients, and what this disk charges to create a file and to fsync one.

    .venv/bin/python -m bench.bench [--rounds 15] [--warmup 2] [--json figures.json]

Each delivery has a fresh token and Message-Id and its own image bytes (a JPEG header, a
random nonce, then random bytes), so every one is stored as a new object, as in real use.
Bodies are encoded before the clock starts; only the POST and its answer are timed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import gunicorn
import requests

from inbox.delivery import build_delivery
from tests.processes import Server, ServerFailed, free_port, scrubbed_environ

KiB, MiB = 1024, 1024 * 1024
CASES = {"25MiB": [25 * MiB], "3x3MiB": [3 * MiB] * 3, "200KiB": [200 * KiB]}
# SOI and a JFIF APP0 segment: libmagic calls what follows image/jpeg.
JPEG_HEADER = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")
RANDOM = os.urandom(25 * MiB)
BENCH_DIR = Path(__file__).resolve().parent


def photo(size: int) -> bytes:
    nonce = os.urandom(16)
    return JPEG_HEADER + nonce + RANDOM[: size - len(JPEG_HEADER) - len(nonce)]


def delivery(key: str, sizes: list[int]) -> tuple[bytes, bytes]:
    """The request head and the multipart body of one signed delivery, encoded once."""
    photos = [(f"photo-{number}.jpg", photo(size), "image/jpeg") for number, size in enumerate(sizes, start=1)]
    body, content_type = build_delivery(
        photos, key=key, sender="bench@example.com", subject="Benchmark", message_id=f"<{uuid.uuid4()}@bench.local>",
    ).encode()
    head = (
        f"POST /webhooks/mailgun HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


def post(port: int, request: tuple[bytes, bytes]) -> tuple[int, bytes, float]:
    """Send one pre-encoded request; return status, answer body and seconds from connect to answer."""
    head, body = request
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(head)
        connection.sendall(body)
        answer = b"".join(iter(lambda: connection.recv(256 * KiB), b""))
    seconds = time.perf_counter() - start
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], seconds


def start_gunicorn(app: str, workers: int, env: dict, workdir: Path) -> Server:
    """A gunicorn master on a free port, returned once /healthz answers and all its workers run."""
    server = Server(f"gunicorn {app}", free_port(), workdir)
    command = [
        Path(sys.executable).with_name("gunicorn"), app, "--pythonpath", BENCH_DIR,
        "--bind", f"127.0.0.1:{server.port}", "--workers", workers, "--worker-class", "sync",
        "--timeout", "120", "--no-control-socket",
    ]
    # cwd is the temp folder, so gunicorn does not pick up the project's gunicorn.conf.py.
    master = server.launch(f"{app.split(':')[0]}-{workers}w-{server.port}", *command, env=env, cwd=workdir)
    try:
        server.wait_until(lambda: requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).ok
                          and len(children(master.pid)) == workers)
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


def check(name: str, status: int, answer: bytes, sizes: list[int]) -> None:
    if name == "service":
        stored = json.loads(answer)["stored"] if status == 200 else []
        if len(stored) != len(sizes) or any(item["content_type"] != "image/jpeg" for item in stored):
            raise SystemExit(f"bench: the service answered {status}: {answer[:500]!r}")
    elif status != 200:
        raise SystemExit(f"bench: the floor answered {status}")


def latencies(servers: dict, key: str, rounds: int, warmup: int, deadline: float) -> dict:
    """Median seconds per case and server, and the worker's RSS growth and writes for the 25 MiB case."""
    times = {case: {name: [] for name in servers} for case in CASES}
    cpu = {case: [] for case in CASES}
    worker = worker_pids(servers["service"])[0]
    rss_growth, written, peak_reset = [], [], True
    for number in range(warmup + rounds):
        if time.monotonic() > deadline:
            break
        for case, sizes in CASES.items():
            request = delivery(key, sizes)
            order = list(servers) if number % 2 == 0 else list(servers)[::-1]
            for name in order:
                big = name == "service" and case == "25MiB"
                if big:
                    rss_before = proc_kib(worker, "VmRSS")
                    peak_reset = reset_peak(worker) and peak_reset
                    written_before = bytes_written(worker)
                cpu_before = cpu_seconds(worker)
                status, answer, seconds = post(servers[name].port, request)
                check(name, status, answer, sizes)
                if number >= warmup:
                    times[case][name].append(seconds)
                    if name == "service":
                        cpu[case].append(cpu_seconds(worker) - cpu_before)
                    if big:
                        rss_growth.append(proc_kib(worker, "VmHWM") - rss_before)
                        written.append(bytes_written(worker) - written_before)
    if not rss_growth:
        raise SystemExit("bench: no round was measured before the deadline; raise --deadline")
    return {
        "rounds": len(times["25MiB"]["service"]),
        "median_ms": {case: {name: 1000 * statistics.median(values) for name, values in by_server.items()}
                      for case, by_server in times.items()},
        "service_cpu_ms": {case: 1000 * statistics.median(values) for case, values in cpu.items()},
        "rss_growth_mib": max(rss_growth) / KiB,
        "worker_rss_mib": proc_kib(worker, "VmRSS") / KiB,
        "peak_reset": peak_reset,
        "disk_writes_per_25MiB": statistics.median(written) / (25 * MiB),
    }


def requests_per_second(server: Server, key: str, sizes: list[int], clients: int, count: int, seconds: float) -> float:
    """Completed deliveries per second with `clients` concurrent senders, each sending up to `count`."""
    for _ in range(2 * clients):
        post(server.port, delivery(key, sizes))  # warm up each worker
    queues = [[delivery(key, sizes) for _ in range(count)] for _ in range(clients)]
    done, failures = [0] * clients, []
    stop_at = time.monotonic() + seconds

    def send(index: int) -> None:
        for request in queues[index]:
            if time.monotonic() > stop_at:
                return
            status, _, _ = post(server.port, request)
            if status != 200:
                failures.append(status)
                return
            done[index] += 1

    threads = [threading.Thread(target=send, args=(index,)) for index in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"bench: throughput run answered {failures[0]}")
    return sum(done) / elapsed


def disk_ms(directory: Path, size: int, repeat: int = 5) -> tuple[float, float]:
    """Median milliseconds to create a file in `directory`, and to fsync `size` bytes written to it."""
    creating, syncing = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        with tempfile.NamedTemporaryFile(dir=directory) as file:
            created = time.perf_counter()
            file.write(RANDOM[:size])
            file.flush()
            written = time.perf_counter()
            os.fsync(file.fileno())
            creating.append(created - start)
            syncing.append(time.perf_counter() - written)
    return 1000 * statistics.median(creating), 1000 * statistics.median(syncing)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds per case (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds sent first and not counted (default 2)")
    parser.add_argument("--deadline", type=float, default=600, help="stop measuring after this many seconds")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.deadline

    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="inbox-bench-") as temporary:
        workdir = Path(temporary)
        env = scrubbed_environ(MAILGUN_WEBHOOK_SIGNING_KEY=key, STORAGE_PROVIDER="local",
                               STORAGE_PATH=str(workdir / "storage"))
        servers = {}
        try:
            servers["service"] = start_gunicorn("inbox:create_app()", 1, env, workdir)
            servers["floor"] = start_gunicorn("floor:app", 1, env, workdir)
            figures = latencies(servers, key, args.rounds, args.warmup, deadline)
        finally:
            for server in servers.values():
                server.stop()
        throughput = {}
        for name, app in (("service", "inbox:create_app()"), ("floor", "floor:app")):
            server = start_gunicorn(app, 2, env, workdir)
            try:
                throughput[name] = requests_per_second(server, key, CASES["200KiB"], 2, 100, 20)
            finally:
                server.stop()
        figures["requests_per_second_2_workers"] = throughput
        # Measured in the store, after the runs: what its file system charges now.
        store = workdir / "storage" / "images"
        figures["create_file_ms"] = disk_ms(store, 0)[0]
        figures["fsync_ms"] = {case: disk_ms(store, sum(sizes))[1] for case, sizes in CASES.items()}

    malloc = {name: value for name, value in os.environ.items() if name.startswith("MALLOC_")}
    figures["environment"] = {"python": platform.python_version(), "gunicorn": gunicorn.__version__,
                              "cpus": os.cpu_count(), "malloc": malloc}
    report(figures, args.warmup)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def report(figures: dict, warmup: int) -> None:
    median = figures["median_ms"]
    environment = figures["environment"]
    malloc = " ".join(f"{name}={value}" for name, value in environment["malloc"].items())
    print(f"inbox bench: {figures['rounds']} rounds per case after {warmup} warm-up, 1 sync worker each, "
          f"gunicorn {environment['gunicorn']}, Python {environment['python']}, {environment['cpus']} CPUs"
          + (f", {malloc}" if malloc else ""))
    print(f"{'case':<8}{'service ms':>11}{'floor ms':>10}{'ratio':>7}{'extra ms':>10}{'svc CPU ms':>12}  target")
    targets = {"25MiB": "ratio <= 1.5", "3x3MiB": "ratio <= 2", "200KiB": "extra <= 2 ms"}
    for case, target in targets.items():
        service, floor = median[case]["service"], median[case]["floor"]
        met = service <= floor + 2 if case == "200KiB" else service / floor <= float(target.split()[-1])
        print(f"{case:<8}{service:>11.1f}{floor:>10.1f}{service / floor:>7.2f}{service - floor:>10.1f}"
              f"{figures['service_cpu_ms'][case]:>12.1f}  {target:<14}{'met' if met else 'NOT MET'}")
    growth = figures["rss_growth_mib"]
    print(f"worker peak RSS growth per 25 MiB delivery: {growth:.1f} MiB (max; RSS {figures['worker_rss_mib']:.0f} MiB)"
          f"  <= 8 MiB  {'met' if growth <= 8 else 'NOT MET'}{'' if figures['peak_reset'] else ' (VmHWM not reset)'}")
    print(f"bytes written to disk per 25 MiB delivery: {figures['disk_writes_per_25MiB']:.2f}x the attachment")
    rps = figures["requests_per_second_2_workers"]
    print(f"200KiB, 2 workers, 2 clients: service {rps['service']:.0f} req/s, floor {rps['floor']:.0f} req/s")
    fsync = figures["fsync_ms"]
    print(f"this disk: creating a file {figures['create_file_ms']:.2f} ms; fsync of a file just written: "
          + ", ".join(f"{case} {ms:.1f} ms" for case, ms in fsync.items()))


if __name__ == "__main__":
    sys.exit(main())
