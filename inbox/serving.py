"""gunicorn settings for the service, one place for gunicorn.conf.py (Procfile) and `inbox serve`.

Threaded workers (see slow_clients.py) so that a handful of slow or silent clients cannot
occupy every worker: WEB_CONCURRENCY processes (default 2) of WEB_THREADS threads each
(default 8). A worker accepts no more connections than it has threads; the others wait
in the listen queue for a worker with a free thread rather than behind a busy one.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

from .config import ConfigError, integer, load_config
from .providers import provider_for


def gunicorn_settings(environ: Mapping[str, str]) -> dict:
    """gunicorn setting names and values, sized from the environment (ConfigError naming a wrong one)."""
    sizes = {"WEB_THREADS": "8", "WEB_CONCURRENCY": "2", "GUNICORN_TIMEOUT": "120", **environ}
    threads = integer(sizes, "WEB_THREADS", 1)
    return {
        "workers": integer(sizes, "WEB_CONCURRENCY", 1),
        "worker_class": "inbox.slow_clients.SlowClientThreadWorker",
        "threads": threads,
        "worker_connections": threads,
        # Mailgun opens a connection per delivery: keeping idle ones costs a connection slot.
        "keepalive": 0,
        # gthread workers report alive from their main loop; a request itself is bounded by the
        # slow-client guard, not by this. Kept from the sync days for a stuck worker.
        "timeout": integer(sizes, "GUNICORN_TIMEOUT", 1),
        "accesslog": "-",
        # The client's values (Referer, User-Agent, a Basic auth user) with their control characters escaped.
        "logger_class": "inbox.log_lines.OneLineAccessLogger",
        # The runtime control socket is one path per user: two services on one host would share it.
        "control_socket_disable": True,
        "post_fork": keep_freed_buffers,
    }


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_buffers(server, worker) -> None:
    """gunicorn post_fork hook: each worker keeps the memory of its freed body buffers for the next delivery.

    A large delivery passes through a handful of 1 MiB buffers at a time (gunicorn's, Werkzeug's,
    ours). By default glibc raises its mmap threshold past them, then hands the heap's free top
    back to the system after each delivery and faults it in again on the next: ~7 MiB of page
    faults per large delivery, and a worker whose memory swings by as much. Fixed thresholds
    keep up to 16 MiB free per malloc arena (one per thread in use) and still map anything over
    4 MiB on its own, returned as soon as it is freed. No-op where the C library has no mallopt.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, 4 << 20)
        mallopt(M_TRIM_THRESHOLD, 16 << 20)


def exit_unless_configured(arbiter) -> None:
    """gunicorn on_starting hook: check the settings once in the master, before any worker starts.

    Only the settings: opening storage here would share its connections with every forked worker.
    """
    try:
        config = load_config(os.environ)  # gunicorn has put its `--env` values there already
        provider_for(config)  # the provider's own settings: still no connection from the master
    except ConfigError as error:
        print(f"inbox: {error}", file=sys.stderr)
        sys.exit(2)
    if not config["INBOX_REPLIES"]:
        print(
            "inbox: replies are off: set MAILGUN_API_KEY and MAILGUN_DOMAIN to send the sender the links",
            file=sys.stderr,
        )
