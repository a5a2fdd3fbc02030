"""The local try-out folder that `inbox serve` keeps (./var): the development signing key and the outbox."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

DATA_DIR = Path("var")
DEV_KEY_FILE = DATA_DIR / "dev-signing-key"
OUTBOX = DATA_DIR / "outbox"


def development_key(create: bool = True) -> str | None:
    """MAILGUN_WEBHOOK_SIGNING_KEY, or the local development key (made by serve, kept in its file)."""
    if os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY"):
        return os.environ["MAILGUN_WEBHOOK_SIGNING_KEY"]
    if not DEV_KEY_FILE.exists():
        if not create:
            return None
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        with os.fdopen(os.open(DEV_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(key)
        # Not printed: the terminal's output may end up in a log. inbox send reads the file.
        print(f"inbox: made a development signing key in {DEV_KEY_FILE} (readable by you only)", file=sys.stderr)
    return DEV_KEY_FILE.read_text().strip()


def command_name() -> str:
    """How this command was run, for the hints it prints."""
    return os.path.relpath(sys.argv[0]) if os.path.isabs(sys.argv[0]) else sys.argv[0]
