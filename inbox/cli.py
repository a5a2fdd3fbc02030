"""The `inbox` command: `serve` runs the service locally, `send` delivers files as Mailgun would,
`delete` takes published images down."""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import json
import mimetypes
import os
import secrets
import sys
import uuid
from pathlib import Path

import requests

from .delivery import build_delivery

DATA_DIR = Path("var")
DEV_KEY_FILE = DATA_DIR / "dev-signing-key"
OUTBOX = DATA_DIR / "outbox"
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


def _command() -> str:
    """How this command was run, for the hints it prints."""
    return os.path.relpath(sys.argv[0]) if os.path.isabs(sys.argv[0]) else sys.argv[0]


def serve(args) -> int:
    from gunicorn.app.base import BaseApplication

    from . import ConfigError, create_app
    from .serving import gunicorn_settings

    settings = {**os.environ, "MAILGUN_WEBHOOK_SIGNING_KEY": development_key()}
    if not settings.get("INBOX_PUBLISHERS"):
        settings["INBOX_PUBLISHERS"] = "*"
        print(
            "inbox: INBOX_PUBLISHERS is not set: anyone may publish (inbox serve only; production refuses "
            "to start without it)",
            file=sys.stderr,
        )
    if not (settings.get("MAILGUN_API_KEY") and settings.get("MAILGUN_DOMAIN")):
        settings.setdefault("INBOX_OUTBOX", str(OUTBOX))
        print(
            f"inbox: MAILGUN_API_KEY/MAILGUN_DOMAIN are not set: replies are written to {OUTBOX}/ instead of sent",
            file=sys.stderr,
        )
    try:
        create_app(settings)  # fail here, with the message, rather than in every worker
        served = gunicorn_settings(os.environ) | {"bind": f"127.0.0.1:{args.port}"}
    except ConfigError as error:
        print(f"inbox: {error}", file=sys.stderr)
        return 2
    if args.workers:
        served["workers"] = args.workers

    class Server(BaseApplication):
        def load_config(self):
            for name, value in served.items():
                self.cfg.set(name, value)

        def load(self):
            return create_app(settings)

    print(
        f"inbox: webhook at http://127.0.0.1:{args.port}/webhooks/mailgun, storage "
        f"{settings.get('STORAGE_PROVIDER', 'local')}; from this folder try: {_command()} send PHOTO.jpg",
        file=sys.stderr,
    )
    Server().run()
    return 0


def show_reply(answer: dict, command: str) -> None:
    """Print the reply the server wrote to its outbox (inbox serve), as the emailer would read it."""
    reply = answer.get("reply") if isinstance(answer, dict) else None
    if not isinstance(reply, dict) or not reply.get("outbox"):
        return
    path = Path(reply["outbox"])
    try:
        with open(path, "rb") as file:
            mail = email.message_from_binary_file(file, policy=email.policy.default)
        text = mail.get_body(("plain",)).get_content()
    except (OSError, AttributeError, LookupError, ValueError) as error:
        print(f"inbox: the server wrote the reply to {path}, which cannot be read from here: {error}", file=sys.stderr)
        return
    print(f"--- the reply {mail['To']} would get ({path}) ---\n{text.rstrip()}\n---", file=sys.stderr)
    if answer.get("stored"):
        print(
            f"inbox: to take them down by reply: {command} send --in-reply-to '{reply['id']}' --text delete",
            file=sys.stderr,
        )


def send(args) -> int:
    if not (args.files or args.in_reply_to):
        print(
            "inbox: nothing to send: name FILEs to attach, or answer a reply with --in-reply-to and --text",
            file=sys.stderr,
        )
        return 2
    missing = [path for path in args.files if not os.path.isfile(path)]
    if missing:
        print(f"inbox: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    key = development_key(create=False)
    if key is None:
        print(
            f"inbox: no signing key here: run this in the folder where `inbox serve` runs (it keeps "
            f"{DEV_KEY_FILE}), or set MAILGUN_WEBHOOK_SIGNING_KEY to the server's key",
            file=sys.stderr,
        )
        return 2
    with contextlib.ExitStack() as files:
        attachments = [
            (
                Path(path).name,
                files.enter_context(open(path, "rb")),
                mimetypes.guess_type(path)[0] or "application/octet-stream",
            )
            for path in args.files
        ]
        delivery = build_delivery(
            attachments,
            key=key,
            sender=args.sender,
            recipient=args.recipient,
            subject=args.subject,
            message_id=args.message_id or f"<{uuid.uuid4()}@inbox.local>",
            text=args.text,
            headers=[("In-Reply-To", args.in_reply_to), ("References", args.in_reply_to)] if args.in_reply_to else [],
        )
        try:
            response = requests.post(args.url, data=delivery.fields, files=delivery.files(), timeout=120)
        except requests.RequestException as error:
            print(f"inbox: cannot deliver to {args.url}: {error}. Is `inbox serve` running?", file=sys.stderr)
            return 2
    # On stderr, so stdout stays the JSON answer alone (for jq); a terminal shows it first.
    print(f"HTTP {response.status_code} {response.reason}", file=sys.stderr, flush=True)
    try:
        answer = response.json()
    except ValueError:
        print(response.text)
    else:
        print(json.dumps(answer, indent=2, ensure_ascii=False), flush=True)
        show_reply(answer, _command())
    if response.status_code == 403:
        print(
            "inbox: the server refused the signature: is this the folder where `inbox serve` runs, or "
            "MAILGUN_WEBHOOK_SIGNING_KEY the server's key?",
            file=sys.stderr,
        )
    return 0 if response.status_code == 200 else 1


def delete(args) -> int:
    """Take published images down from the configured store: one line per reference; 1 if any was not found."""
    from . import ConfigError, create_app
    from .storage import StorageUnavailable, current_store
    from .takedown import object_name_of, take_down

    key = development_key(create=False)
    if key is None:
        print(
            "inbox: no configuration here: set the service's environment (MAILGUN_WEBHOOK_SIGNING_KEY, "
            f"STORAGE_*), or run this in the folder where `inbox serve` runs (it keeps {DEV_KEY_FILE})",
            file=sys.stderr,
        )
        return 2
    settings = {**os.environ, "MAILGUN_WEBHOOK_SIGNING_KEY": key}
    if not settings.get("INBOX_PUBLISHERS"):
        settings["INBOX_PUBLISHERS"] = "*"  # who may publish plays no part in a takedown; the app only opens the store
    try:
        app = create_app(settings)
    except ConfigError as error:
        print(f"inbox: {error}", file=sys.stderr)
        return 2
    store = current_store(app)
    removed = not_found = 0
    for reference in args.references:
        try:  # one at a time, so a storage failure midway still leaves the lines of what was removed
            outcome = take_down(store, [reference])
        except StorageUnavailable as error:
            print(f"inbox: {reference} was not taken down, the storage failed: {error}", file=sys.stderr)
            return 2
        if outcome.removed:
            removed += 1
            print(f"removed {reference}", flush=True)
        elif object_name_of(reference) is None:
            not_found += 1
            print(f"not found: {reference} (not the name of an image this service publishes)", flush=True)
        else:
            not_found += 1
            print(
                f"not found: {reference} (no such image in {store.provider} container {store.images.name})", flush=True
            )
    if removed:
        print(
            f"inbox: a CDN or browser may still serve a cached copy for up to {app.config['INBOX_CACHE_MAX_AGE']} s "
            "(INBOX_CACHE_MAX_AGE)",
            file=sys.stderr,
        )
    return 1 if not_found else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="inbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the service on 127.0.0.1 (gunicorn)")
    serve_parser.add_argument(
        "--port", type=int, default=8000, help="port on 127.0.0.1 to listen on (default 8000; send's --url must match)"
    )
    serve_parser.add_argument("--workers", type=int, help="worker processes (default: WEB_CONCURRENCY, else 2)")
    serve_parser.set_defaults(run=serve)
    send_parser = commands.add_parser("send", help="deliver files to the webhook as a signed Mailgun message")
    send_parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="files to attach, e.g. examples/photo.jpg (none when answering a reply)",
    )
    send_parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the webhook to post to (default {DEFAULT_URL}; other port: serve --port)"
    )
    send_parser.add_argument(
        "--from",
        dest="sender",
        default="someone@example.com",
        help="the sender's address (default someone@example.com)",
    )
    send_parser.add_argument(
        "--to",
        dest="recipient",
        default="photos@example.com",
        help="the inbox address it was sent to (default photos@example.com)",
    )
    send_parser.add_argument("--subject", default="Photos", help="the subject line (default Photos)")
    send_parser.add_argument(
        "--message-id",
        help="the Message-Id, e.g. <1@example.com> (default: a new one); "
        "reuse one to see a redelivery give the same URLs",
    )
    send_parser.add_argument("--text", default="", help="the message text, e.g. delete (default: none)")
    send_parser.add_argument(
        "--in-reply-to",
        metavar="MESSAGE_ID",
        help="answer this mail, e.g. the reply's <inbox.KEY@example.com> with --text delete to take its photos down",
    )
    send_parser.set_defaults(run=send)
    delete_parser = commands.add_parser(
        "delete",
        help="take published images down from the configured store (caches may keep a copy for up to "
        "INBOX_CACHE_MAX_AGE seconds)",
    )
    delete_parser.add_argument(
        "references",
        nargs="+",
        metavar="URL|NAME",
        help="a public URL the service answered, or its object name (<uuid>.<ext>)",
    )
    delete_parser.set_defaults(run=delete)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
