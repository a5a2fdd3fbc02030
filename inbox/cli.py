"""The `inbox` command: `serve` runs the service locally, `send` delivers files as Mailgun would,
`delete` takes published images down."""

from __future__ import annotations

import argparse
import os
import sys

from .send_command import DEFAULT_URL, send, send_command_line
from .workspace import DEV_KEY_FILE, OUTBOX, development_key


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

    webhook = f"http://127.0.0.1:{args.port}/webhooks/mailgun"
    print(
        f"inbox: webhook at {webhook}, storage {settings.get('STORAGE_PROVIDER', 'local')}; "
        f"from this folder try: {send_command_line(webhook)} PHOTO.jpg",
        file=sys.stderr,
    )
    Server().run()
    return 0


def delete(args) -> int:
    """Take published images down from the configured store: one line per reference; 1 if any was not found."""
    from .config import ConfigError, load_config
    from .storage import StorageUnavailable
    from .store_opening import open_store
    from .takedown import take_down

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
        settings["INBOX_PUBLISHERS"] = "*"  # who may publish plays no part in a takedown
    try:
        config = load_config(settings)
        store = open_store(config, create=False)  # the service's store, or an error: never a new, empty one
    except ConfigError as error:
        print(f"inbox: {error}", file=sys.stderr)
        return 2
    where = f"{store.provider} container {store.images.name}"
    if store.serves_files:  # the local store: say which folder was looked in
        where += f" at {store.images.driver.get_container_cdn_url(store.images)}"
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
        elif outcome.not_ours:
            not_found += 1
            print(f"not found: {reference} (not the name of an image this service publishes)", flush=True)
        else:
            not_found += 1
            print(f"not found: {reference} (no such image in {where})", flush=True)
    if removed:
        print(
            f"inbox: a CDN or browser may still serve a cached copy for up to {config['INBOX_CACHE_MAX_AGE']} s "
            "(INBOX_CACHE_MAX_AGE)",
            file=sys.stderr,
        )
    return 1 if not_found else 0


def whole_number(low: int, high: int | None, what: str):
    """An argparse type: a whole number from `low` to `high` (None: no top), else a usage error saying it is not `what`.

    A usage error rather than gunicorn's traceback (a port past 65535), or a quiet default (0 workers).
    """

    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit() and low <= int(text) and (high is None or int(text) <= high)):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return int(text)

    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="inbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the service on 127.0.0.1 (gunicorn)")
    serve_parser.add_argument(
        "--port",
        type=whole_number(1, 65535, "a port number (1-65535)"),
        default=8000,
        help="port on 127.0.0.1 to listen on (default 8000; send's --url must match)",
    )
    serve_parser.add_argument(
        "--workers",
        type=whole_number(1, None, "a number of workers (1 or more)"),
        help="worker processes (default: WEB_CONCURRENCY, else 2)",
    )
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
