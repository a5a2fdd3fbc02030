"""The `inbox` command: `serve` runs the service locally, `send` delivers files as Mailgun would."""
from __future__ import annotations

import argparse
import json
import mimetypes
import os
import secrets
import sys
import time
import uuid
from pathlib import Path

import requests

from .mailgun import sign

DATA_DIR = Path("var")
DEV_KEY_FILE = DATA_DIR / "dev-signing-key"
DEFAULT_URL = "http://127.0.0.1:8000/webhooks/mailgun"


def development_key(create: bool = True) -> str | None:
    """MAILGUN_WEBHOOK_SIGNING_KEY, or the local development key (made by serve, shown once)."""
    if os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY"):
        return os.environ["MAILGUN_WEBHOOK_SIGNING_KEY"]
    if not DEV_KEY_FILE.exists():
        if not create:
            return None
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        with os.fdopen(os.open(DEV_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(key)
        print(f"inbox: made a development signing key in {DEV_KEY_FILE} (shown this once): {key}", file=sys.stderr)
    return DEV_KEY_FILE.read_text().strip()


def serve(args) -> int:
    from gunicorn.app.base import BaseApplication

    from . import ConfigError, create_app
    from .serving import gunicorn_settings

    settings = {**os.environ, "MAILGUN_WEBHOOK_SIGNING_KEY": development_key()}
    try:
        create_app(settings)  # fail here, with the message, rather than in every worker
    except ConfigError as error:
        print(f"inbox: {error}", file=sys.stderr)
        return 2

    class Server(BaseApplication):
        def load_config(self):
            overrides = {"bind": f"127.0.0.1:{args.port}"} | ({"workers": args.workers} if args.workers else {})
            for name, value in {**gunicorn_settings(os.environ), **overrides}.items():
                self.cfg.set(name, value)

        def load(self):
            return create_app(settings)

    command = os.path.relpath(sys.argv[0]) if os.path.isabs(sys.argv[0]) else sys.argv[0]
    print(f"inbox: webhook at http://127.0.0.1:{args.port}/webhooks/mailgun, storage "
          f"{settings.get('STORAGE_PROVIDER', 'local')}; from this folder try: {command} send PHOTO.jpg",
          file=sys.stderr)
    Server().run()
    return 0


def build_delivery(paths, *, key, sender, recipient, subject, message_id):
    """The form fields and files of a signed, Mailgun-shaped forward() POST."""
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    headers = [["From", sender], ["To", recipient], ["Subject", subject], ["Message-Id", message_id]]
    fields = {
        "recipient": recipient, "sender": sender, "from": sender, "From": sender, "To": recipient,
        "subject": subject, "Subject": subject, "Message-Id": message_id, "body-plain": "",
        "message-headers": json.dumps(headers), "attachment-count": str(len(paths)),
        "timestamp": timestamp, "token": token, "signature": sign(key, timestamp, token),
    }
    files = [
        (f"attachment-{number}", (Path(path).name, open(path, "rb"), mimetypes.guess_type(path)[0] or "application/octet-stream"))
        for number, path in enumerate(paths, start=1)
    ]
    return fields, files


def send(args) -> int:
    missing = [path for path in args.files if not os.path.isfile(path)]
    if missing:
        print(f"inbox: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    key = development_key(create=False)
    if key is None:
        print(f"inbox: no signing key here: run this in the folder where `inbox serve` runs (it keeps "
              f"{DEV_KEY_FILE}), or set MAILGUN_WEBHOOK_SIGNING_KEY to the server's key", file=sys.stderr)
        return 2
    fields, files = build_delivery(
        args.files, key=key, sender=args.sender, recipient=args.recipient, subject=args.subject,
        message_id=args.message_id or f"<{uuid.uuid4()}@inbox.local>",
    )
    try:
        response = requests.post(args.url, data=fields, files=files, timeout=120)
    except requests.RequestException as error:
        print(f"inbox: cannot deliver to {args.url}: {error}. Is `inbox serve` running?", file=sys.stderr)
        return 2
    finally:
        for _, (_, file, _) in files:
            file.close()
    try:
        print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    except ValueError:
        print(response.text)
    if response.status_code == 403:
        print("inbox: the server refused the signature: is this the folder where `inbox serve` runs, or "
              "MAILGUN_WEBHOOK_SIGNING_KEY the server's key?", file=sys.stderr)
    return 0 if response.status_code == 200 else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="inbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the service on 127.0.0.1 (gunicorn)")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--workers", type=int, help="worker processes (default: WEB_CONCURRENCY, else 2)")
    serve_parser.set_defaults(run=serve)
    send_parser = commands.add_parser("send", help="deliver files to the webhook as a signed Mailgun message")
    send_parser.add_argument("files", nargs="+", metavar="FILE")
    send_parser.add_argument("--url", default=DEFAULT_URL)
    send_parser.add_argument("--from", dest="sender", default="someone@example.com")
    send_parser.add_argument("--to", dest="recipient", default="photos@example.com")
    send_parser.add_argument("--subject", default="Photos")
    send_parser.add_argument("--message-id", help="reuse one to see a redelivery give the same URLs")
    send_parser.set_defaults(run=send)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
