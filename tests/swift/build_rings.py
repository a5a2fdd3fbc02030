"""Builds one-device account, container and object rings: build_rings.py FOLDER ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT.

Run with Swift's own Python (.cache/swift/bin/python), which has swift installed.
"""

import sys

from swift.common.ring import RingBuilder

for kind, port in zip(("account", "container", "object"), sys.argv[2:], strict=True):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev(
        {"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1", "weight": 1}
    )
    builder.rebalance()
    builder.save(f"{sys.argv[1]}/{kind}.builder")
    builder.get_ring().save(f"{sys.argv[1]}/{kind}.ring.gz")
