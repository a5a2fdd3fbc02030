"""What a small delivery costs the disk, counted by strace (bench/bench.py prints the same counts).

A 200 is a promise that the image survives a crash, so a delivery fsyncs at least once; issue
13 wants the per-message fixed cost down to one private write, so the counts may only fall.
"""

from __future__ import annotations

import os
import uuid

from bench.syscalls import count_file_calls, traced
from bench.traceable import allow_tracing
from bench.workload import photo
from tests.harness import mailgun_form

DELIVERIES = 5
# Per 200 KiB delivery on the local store: two files (the attachment's spool, which becomes the image,
# and the token's claim, which becomes its receipt) and four fsyncs (each file, and each of the two
# folders its new name is in). That, and no less, is what lets a 200 survive a crash.
FSYNCS = 4
FILES_CREATED = 2


def test_a_small_delivery_is_durable_in_two_files_and_four_fsyncs(client):
    forms = [
        mailgun_form(("photo.jpg", photo(200 * 1024)), message_id=f"<{uuid.uuid4()}@test>") for _ in range(DELIVERIES)
    ]
    client.post("/webhooks/mailgun", data=mailgun_form(("warm.jpg", photo(200 * 1024))))  # first-request imports

    allow_tracing()  # strace is our child, not our ancestor: Yama's ptrace_scope 1 would refuse it
    with traced(os.getpid()) as calls:
        statuses = [client.post("/webhooks/mailgun", data=form).status_code for form in forms]

    assert statuses == [200] * DELIVERIES
    assert calls.fsyncs == FSYNCS * DELIVERIES, calls
    assert calls.files_created == FILES_CREATED * DELIVERIES, calls


def test_the_trace_counts_creations_not_opens_and_interrupted_calls_once():
    trace = "\n".join(
        [
            '101 openat(AT_FDCWD, "/s/.spool-1", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 5',
            '101 openat(AT_FDCWD, "/s/images/a.jpg", O_RDONLY|O_CLOEXEC) = 6',
            '102 openat(AT_FDCWD, "/s", O_RDWR|O_TMPFILE|O_CLOEXEC, 0600 <unfinished ...>',
            "101 fsync(5 <unfinished ...>",
            "102 <... openat resumed>) = 7",
            "101 <... fsync resumed>) = 0",
            "101 fdatasync(7) = 0",
            '101 linkat(AT_FDCWD, "/s/.spool-1", AT_FDCWD, "/s/images/b.jpg", 0) = 0',
            '101 rename("/s/b.meta.tmp", "/s/b.meta") = 0',
            '101 unlink("/s/.spool-1") = 0',
            "101 +++ exited with 0 +++",
        ]
    )

    calls = count_file_calls(trace)

    assert (calls.fsyncs, calls.files_created, calls.links, calls.renames, calls.unlinks) == (2, 2, 1, 1, 1)
