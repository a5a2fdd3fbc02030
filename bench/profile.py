"""Where the milliseconds of one small delivery go, in-process: cProfile of the app answering it.

    .venv/bin/python -m bench.profile [--size 204800] [--deliveries 200] [--top 25]

Runs the service on a temporary local store (location removal on, replies off), builds
`deliveries` signed WSGI requests of one JPEG of `size` bytes up front, sends one unprofiled
warm-up, then profiles the app answering the rest and prints the functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import secrets
import tempfile
import time
import uuid

from flask.testing import EnvironBuilder
from werkzeug.test import run_wsgi_app

from bench.workload import photo
from inbox import create_app
from inbox.delivery import build_delivery
from inbox.send_command import AUTHENTICATED_TRACE


def environs(app, key: str, size: int, count: int) -> list[dict]:
    """`count` encoded WSGI requests, each a fresh signed delivery of one JPEG."""
    built = []
    for _ in range(count):
        form = build_delivery(
            [("photo.jpg", photo(size), "image/jpeg")],
            key=key,
            trace=AUTHENTICATED_TRACE,
            message_id=f"<{uuid.uuid4()}@bench.local>",
        ).form()
        builder = EnvironBuilder(app, "/webhooks/mailgun", method="POST", data=form)
        built.append(builder.get_environ())
        builder.close()
    return built


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200 * 1024, help="bytes of the one JPEG (default 200 KiB)")
    parser.add_argument("--deliveries", type=int, default=200, help="profiled deliveries (default 200)")
    parser.add_argument("--top", type=int, default=25, help="functions to print (default 25)")
    args = parser.parse_args(argv)
    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="inbox-profile-") as folder:
        app = create_app(
            {
                "MAILGUN_WEBHOOK_SIGNING_KEY": key,
                "STORAGE_PROVIDER": "local",
                "STORAGE_PATH": folder,
                "INBOX_STRIP_LOCATION": "true",
                "INBOX_PUBLISHERS": "*",
            }
        )
        logging.getLogger("inbox").setLevel(logging.WARNING)  # one line per delivery would bury the profile
        warmup, *requests = environs(app, key, args.size, args.deliveries + 1)
        statuses = {run_wsgi_app(app, warmup, buffered=True)[1]}
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        statuses |= {run_wsgi_app(app, environ, buffered=True)[1] for environ in requests}
        profiler.disable()
        elapsed = time.perf_counter() - start
    if statuses != {"200 OK"}:
        raise SystemExit(f"bench.profile: deliveries answered {sorted(statuses)}")
    print(
        f"{args.deliveries} deliveries of {args.size} bytes in-process: {1000 * elapsed / args.deliveries:.2f} ms each"
    )
    print(
        f"(under cProfile; times below cover all {args.deliveries}: "
        f"ms per delivery = seconds x {1000 / args.deliveries:g})"
    )
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
