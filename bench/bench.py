"""What a delivery costs the service beyond receiving its bytes (issues 5, 10 and 13).

Starts under gunicorn (one sync worker each, 127.0.0.1, free ports), on temporary folders:
the service with location removal on and, beside it, off; the blog-tutorial handler
(bench/tutorial.py); the write floor, the durable floor (the write floor made durable) and the
read floor (bench/floor.py); and for the 200 KiB case the service with replies on, sent to a
loopback stand-in for Mailgun's Messages API (bench/standin.py). All get the same signed
deliveries, round-robin (the order alternates). Prints per case the medians and ratios against
the floors and the tutorial with the targets met or not, the worker's CPU time and peak RSS
growth, its disk writes per 25 MiB, fsyncs and new files per delivery counted by strace,
requests/s with 2 workers and 2 clients (service, tutorial and the floors), and what this disk
charges to create a file and to fsync one.

    .venv/bin/python -m bench.bench [--rounds 15] [--warmup 2] [--quick] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import gunicorn
import requests

from bench.report import report
from bench.syscalls import traced
from bench.workers import bytes_written, cpu_seconds, proc_kib, reset_peak, start_gunicorn, worker_pids
from bench.workload import RANDOM, KiB, MiB, delivery, post
from tests.processes import Server, free_port, scrubbed_environ

CASES = {"25MiB": [25 * MiB], "3x3MiB": [3 * MiB] * 3, "200KiB": [200 * KiB]}
SERVICE = "inbox:create_app()"
# Replies go to the loopback stand-in; {standin_port} is filled in when it runs.
REPLY_SETTINGS = {
    "MAILGUN_API_KEY": "bench-api-key",
    "MAILGUN_DOMAIN": "bench.example.com",
    "MAILGUN_API_URL": "http://127.0.0.1:{standin_port}/v3",
}
# name: (WSGI app, settings beyond the signing key and the store, cases it is sent)
LATENCY_SERVERS = {
    "service": (SERVICE, {"INBOX_STRIP_LOCATION": "true"}, list(CASES)),
    "strip off": (SERVICE, {"INBOX_STRIP_LOCATION": "false"}, list(CASES)),
    "reply on": (SERVICE, {"INBOX_STRIP_LOCATION": "true", **REPLY_SETTINGS}, ["200KiB"]),
    "tutorial": ("tutorial:app", {}, list(CASES)),
    "write floor": ("floor:write_app", {}, list(CASES)),
    "durable floor": ("floor:durable_app", {}, list(CASES)),
    "read floor": ("floor:app", {}, list(CASES)),
}
THROUGHPUT_SERVERS = ("service", "tutorial", "write floor", "durable floor", "read floor")
TRACED_SERVERS = ("service", "tutorial", "write floor", "durable floor")


def environment(name: str, key: str, workdir: Path, standin_port: int) -> dict:
    """The environment of one server: its own store or upload folder under `workdir`."""
    app, extra, _ = LATENCY_SERVERS[name]
    folder = workdir / name.replace(" ", "-")
    folder.mkdir(exist_ok=True)
    settings = {name: value.format(standin_port=standin_port) for name, value in extra.items()}
    if app == SERVICE:
        settings.update(STORAGE_PROVIDER="local", STORAGE_PATH=str(folder), INBOX_PUBLISHERS="*")
    return scrubbed_environ(
        MAILGUN_WEBHOOK_SIGNING_KEY=key, FLOOR_PATH=str(folder), TUTORIAL_PATH=str(folder), **settings
    )


def start_standin(workdir: Path) -> Server:
    server = Server("Messages API stand-in", free_port(), workdir)
    server.launch("standin", sys.executable, "-m", "bench.standin", server.port, cwd=Path.cwd())
    server.wait_until(lambda: requests.get(f"http://127.0.0.1:{server.port}/count", timeout=2).ok)
    return server


def check(name: str, status: int, answer: bytes, sizes: list[int]) -> None:
    if "floor" in name:
        if status != 200:
            raise SystemExit(f"bench: the {name} answered {status}")
        return
    stored = json.loads(answer).get("stored", []) if status == 200 else []
    if len(stored) != len(sizes) or any(item["content_type"] != "image/jpeg" for item in stored):
        raise SystemExit(f"bench: the {name} answered {status}: {answer[:500]!r}")


def latencies(servers: dict, key: str, rounds: int, warmup: int, deadline: float) -> dict:
    """Median ms per case and server; the service worker's CPU, peak RSS growth, and writes per 25 MiB."""
    times = {case: {name: [] for name in servers if case in LATENCY_SERVERS[name][2]} for case in CASES}
    cpu, growth = {case: [] for case in CASES}, {case: [] for case in CASES}
    worker = worker_pids(servers["service"])[0]
    written, peak_reset = [], True
    for number in range(warmup + rounds):
        if time.monotonic() > deadline:
            break
        for case, sizes in CASES.items():
            request = delivery(key, sizes)
            order = list(times[case]) if number % 2 == 0 else list(times[case])[::-1]
            for name in order:
                measured = number >= warmup
                if name == "service":
                    rss_before, cpu_before, written_before = (
                        proc_kib(worker, "VmRSS"),
                        cpu_seconds(worker),
                        bytes_written(worker),
                    )
                    peak_reset = reset_peak(worker) and peak_reset
                status, answer, seconds = post(servers[name].port, request)
                check(name, status, answer, sizes)
                if measured:
                    times[case][name].append(seconds)
                if measured and name == "service":
                    cpu[case].append(cpu_seconds(worker) - cpu_before)
                    growth[case].append(proc_kib(worker, "VmHWM") - rss_before)
                    if case == "25MiB":
                        written.append(bytes_written(worker) - written_before)
    if not written:
        raise SystemExit("bench: no round was measured before the deadline; raise --deadline")
    return {
        "rounds": len(written),
        "median_ms": {
            case: {name: 1000 * statistics.median(values) for name, values in by_server.items()}
            for case, by_server in times.items()
        },
        "service_cpu_ms": {case: 1000 * statistics.median(values) for case, values in cpu.items()},
        "rss_growth_mib": {case: max(values) / KiB for case, values in growth.items()},
        "worker_rss_mib": proc_kib(worker, "VmRSS") / KiB,
        "peak_reset": peak_reset,
        "disk_writes_per_25MiB": statistics.median(written) / (25 * MiB),
    }


def file_calls(server: Server, key: str, count: int) -> dict[str, float]:
    """fsyncs, new files, links, renames… per 200 KiB delivery, counted by strace on the one worker."""
    requests_ = [delivery(key, CASES["200KiB"]) for _ in range(count)]
    with traced(worker_pids(server)[0]) as calls:
        for request in requests_:
            status, _, _ = post(server.port, request)
            if status != 200:
                raise SystemExit(f"bench: a traced delivery answered {status}")
    return calls.per(count)


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


def measure(args, workdir: Path, deadline: float) -> dict:
    key = secrets.token_hex(32)
    standin = start_standin(workdir)
    servers = {}
    try:
        for name, (app, _, _) in LATENCY_SERVERS.items():
            servers[name] = start_gunicorn(app, 1, environment(name, key, workdir, standin.port), workdir)
        figures = latencies(servers, key, args.rounds, args.warmup, deadline)
        figures["file_calls_per_200KiB"] = {
            name: file_calls(servers[name], key, args.traced) for name in TRACED_SERVERS
        }
        replies = requests.get(f"http://127.0.0.1:{standin.port}/count", timeout=5).json()["queued"]
        figures["replies_queued"] = {"replies": replies, "deliveries": args.warmup + figures["rounds"]}
    finally:
        for server in servers.values():
            server.stop()
        standin.stop()
    throughput = {}
    for name in THROUGHPUT_SERVERS:
        server = start_gunicorn(LATENCY_SERVERS[name][0], 2, environment(name, key, workdir, 0), workdir)
        try:
            throughput[name] = requests_per_second(server, key, CASES["200KiB"], 2, args.count, args.seconds)
        finally:
            server.stop()
    figures["requests_per_second_2_workers"] = throughput
    # Measured in the store, after the runs: what its file system charges now.
    store = workdir / "service" / "images"
    figures["create_file_ms"] = disk_ms(store, 0)[0]
    figures["fsync_ms"] = {case: disk_ms(store, sum(sizes))[1] for case, sizes in CASES.items()}
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds per case (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds sent first and not counted (default 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 rounds, short throughput runs")
    parser.add_argument("--deadline", type=float, default=600, help="stop measuring after this many seconds")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args(argv)
    args.rounds, args.warmup = (3, 1) if args.quick else (args.rounds, args.warmup)
    args.traced, args.count, args.seconds = (5, 100, 3) if args.quick else (20, 400, 10)
    deadline = time.monotonic() + args.deadline

    with tempfile.TemporaryDirectory(prefix="inbox-bench-") as temporary:
        figures = measure(args, Path(temporary), deadline)
    malloc = {name: value for name, value in os.environ.items() if name.startswith("MALLOC_")}
    figures["environment"] = {
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "cpus": os.cpu_count(),
        "malloc": malloc,
    }
    report(figures, args.warmup)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
