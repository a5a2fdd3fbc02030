"""Prints bench.py's figures as one table, each target of issues 10 and 13 marked met or NOT MET."""

from __future__ import annotations

COLUMNS = ("service", "strip off", "tutorial", "write floor", "durable floor", "read floor")
# case: (most service/write floor, most service/tutorial or None)
LATENCY_TARGETS = {"25MiB": (1.0, None), "3x3MiB": (1.2, None), "200KiB": (1.8, 1.5)}
STRIP_BUDGET = 1.10  # location removal on / off, 25 MiB and 3x3 MiB (issue 10)
THROUGHPUT_SHARE = 0.40  # of the write floor's requests/s, 200 KiB, 2 workers (issue 13)
RSS_GROWTH_MIB = 8


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def report(figures: dict, warmup: int) -> None:
    median, environment = figures["median_ms"], figures["environment"]
    malloc = " ".join(f"{name}={value}" for name, value in environment["malloc"].items())
    print(
        f"inbox bench: {figures['rounds']} rounds per case after {warmup} warm-up, 1 sync worker each, "
        f"gunicorn {environment['gunicorn']}, Python {environment['python']}, {environment['cpus']} CPUs"
        + (f", {malloc}" if malloc else "")
    )
    print("median ms per delivery; service = location removal on, reply off")
    print(
        f"{'case':<8}"
        + "".join(f"{name:>14}" for name in COLUMNS)
        + f"{'/write':>8}{'/durable':>9}{'/read':>7}{'/tutor':>8}{'on/off':>8}{'svc CPU':>9}{'RSS +MiB':>9}"
    )
    for case, by_server in median.items():
        service = by_server["service"]
        print(
            f"{case:<8}"
            + "".join(f"{by_server[name]:>14.1f}" for name in COLUMNS)
            + f"{service / by_server['write floor']:>8.2f}{service / by_server['durable floor']:>9.2f}"
            f"{service / by_server['read floor']:>7.2f}"
            f"{service / by_server['tutorial']:>8.2f}{service / by_server['strip off']:>8.2f}"
            f"{figures['service_cpu_ms'][case]:>9.1f}{figures['rss_growth_mib'][case]:>9.1f}"
        )
    print("targets (medians of this run):")
    for case, (write_most, tutorial_most) in LATENCY_TARGETS.items():
        ratio = median[case]["service"] / median[case]["write floor"]
        tutorial, durable = (median[case][name] / median[case]["write floor"] for name in ("tutorial", "durable floor"))
        print(
            f"  {case:<7} service / write floor {ratio:5.2f} <= {write_most:<4}  {verdict(ratio <= write_most)}"
            f"  (tutorial / write floor {tutorial:.2f}, durable floor / write floor {durable:.2f})"
        )
        if tutorial_most:
            ratio = median[case]["service"] / median[case]["tutorial"]
            print(
                f"  {case:<7} service / tutorial    {ratio:5.2f} <= {tutorial_most:<4}  "
                f"{verdict(ratio <= tutorial_most)}"
            )
    for case in ("25MiB", "3x3MiB"):
        ratio = median[case]["service"] / median[case]["strip off"]
        print(f"  {case:<7} location removal on / off {ratio:5.2f} <= {STRIP_BUDGET}  {verdict(ratio <= STRIP_BUDGET)}")
    rps = figures["requests_per_second_2_workers"]
    share = rps["service"] / rps["write floor"]
    print(
        f"  200KiB, 2 workers, 2 clients: service {rps['service']:.0f} req/s, write floor {rps['write floor']:.0f}, "
        f"read floor {rps['read floor']:.0f}; service / write floor {share:.0%} >= {THROUGHPUT_SHARE:.0%}  "
        f"{verdict(share >= THROUGHPUT_SHARE)}  (tutorial {rps['tutorial']:.0f}, "
        f"{rps['tutorial'] / rps['write floor']:.0%}; durable floor {rps['durable floor']:.0f}, "
        f"{rps['durable floor'] / rps['write floor']:.0%})"
    )
    growth = max(figures["rss_growth_mib"].values())
    print(
        f"  worker peak RSS growth, any size: {growth:.1f} MiB (max; RSS {figures['worker_rss_mib']:.0f} MiB) "
        f"<= {RSS_GROWTH_MIB} MiB  {verdict(growth <= RSS_GROWTH_MIB)}"
        + ("" if figures["peak_reset"] else " (VmHWM not reset)")
    )
    reply = median["200KiB"]
    queued = figures["replies_queued"]
    print(
        f"reply (loopback Messages API stand-in), 200KiB: on {reply['reply on']:.1f} ms, "
        f"off {reply['service']:.1f} ms ({reply['reply on'] - reply['service']:+.1f} ms); "
        f"the stand-in queued {queued['replies']} replies "
        f"for {queued['deliveries']} deliveries"
    )
    print("per 200KiB delivery, counted by strace on the worker:")
    for name, calls in figures["file_calls_per_200KiB"].items():
        print(f"  {name:<13} " + ", ".join(f"{kind.replace('_', ' ')} {count:.2f}" for kind, count in calls.items()))
    print(f"bytes written to disk per 25 MiB delivery: {figures['disk_writes_per_25MiB']:.2f}x the attachment")
    print(
        f"this disk: creating a file {figures['create_file_ms']:.2f} ms; fsync of a file just written: "
        + ", ".join(f"{case} {ms:.1f} ms" for case, ms in figures["fsync_ms"].items())
    )
