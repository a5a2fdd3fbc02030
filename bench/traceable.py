"""Lets strace attach to a running process where Yama's ptrace_scope 1 allows only ancestors to trace.

The bench's strace is a sibling of the gunicorn workers it counts, and the test traces pytest
itself, so each process names any tracer as allowed (PR_SET_PTRACER). Also a gunicorn config
file (`gunicorn -c bench/traceable.py`): its post_fork hook does this in every worker, and
applies the service's malloc settings (inbox.serving.keep_freed_buffers) to every app alike.
"""

from __future__ import annotations

import ctypes

from inbox.serving import keep_freed_buffers

PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = ctypes.c_ulong(-1)


def allow_tracing() -> None:
    """Let any process of this user ptrace this one; without Yama the kernel refuses the option, harmlessly."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0)


def post_fork(server, worker) -> None:
    allow_tracing()
    # The service's own memory settings (inbox.serving), for every app the bench compares alike.
    keep_freed_buffers(server, worker)
