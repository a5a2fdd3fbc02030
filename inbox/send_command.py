"""`inbox send`: deliver files to a running webhook signed and shaped as Mailgun would, and show the reply."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import mimetypes
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

import requests

from .delivery import build_delivery
from .workspace import DEV_KEY_FILE, command_name, development_key

DEFAULT_URL = "http://127.0.0.1:8000/webhooks/mailgun"
# What Mailgun writes above a mail whose sender's SPF passed (its verdicts, then its MX's Received
# line): the service takes photos down by reply, even where anyone may publish, only for such a sender.
AUTHENTICATED_TRACE = [
    ("X-Mailgun-Sflag", "No"),
    ("X-Mailgun-Spf", "Pass"),
    ("Received", "from localhost (localhost [127.0.0.1]) by mxa.mailgun.org with HTTP (inbox send)"),
]


def send_command_line(url: str) -> str:
    """`inbox send` as the hints print it: with --url unless it is the default, so a pasted hint reaches `url`."""
    command = f"{command_name()} send"
    return command if url == DEFAULT_URL else f"{command} --url {shlex.quote(url)}"


def show_reply(answer: dict, resend: str, posted_at: float) -> None:
    """Print the reply the server wrote to its outbox (inbox serve), as the emailer would read it.

    A redelivery answers the reply recorded the first time (written before `posted_at`): no second one went out.
    The takedown hint answers it as the emailer would: `resend` (send_command_line), from the address the
    reply went to, to the address it came from.
    """
    reply = answer.get("reply") if isinstance(answer, dict) else None
    if not isinstance(reply, dict) or not reply.get("outbox"):
        return
    path = Path(reply["outbox"])
    try:
        with open(path, "rb") as file:
            mail = email.message_from_binary_file(file, policy=email.policy.default)
        text = mail.get_body(("plain",)).get_content()
        emailer, inbox = mail["To"].addresses[0].addr_spec, mail["From"].addresses[0].addr_spec
        earlier = path.stat().st_mtime < posted_at
    except (OSError, AttributeError, LookupError, ValueError) as error:
        print(f"inbox: the server wrote the reply to {path}, which cannot be read from here: {error}", file=sys.stderr)
        return
    if earlier:
        heading = f"no second reply: the one {mail['To']} got when this mail was first delivered"
    else:
        heading = f"the reply {mail['To']} would get"
    print(f"--- {heading} ({path}) ---\n{text.rstrip()}\n---", file=sys.stderr)
    if answer.get("stored"):
        answer_options = ["--from", emailer, "--to", inbox, "--in-reply-to", reply["id"], "--text", "delete"]
        print(f"inbox: to take them down by reply: {resend} {shlex.join(answer_options)}", file=sys.stderr)


def send(args) -> int:
    if not (args.files or args.in_reply_to):
        print(
            "inbox: nothing to send: name FILEs to attach, or answer a reply with --in-reply-to and --text",
            file=sys.stderr,
        )
        return 2
    problems = [
        f"{path} is a folder: name the files in it ({os.path.join(path, '*.jpg')})"
        if os.path.isdir(path)
        else f"no such file: {path}"
        for path in args.files
        if not os.path.isfile(path)
    ]
    if problems:
        print(f"inbox: {'; '.join(problems)}", file=sys.stderr)
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
            trace=AUTHENTICATED_TRACE,
        )
        posted_at = time.time()
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
        show_reply(answer, send_command_line(args.url), posted_at)
    if response.status_code == 403:
        print(
            "inbox: the server refused the signature: is this the folder where `inbox serve` runs, or "
            "MAILGUN_WEBHOOK_SIGNING_KEY the server's key?",
            file=sys.stderr,
        )
    return 0 if response.status_code == 200 else 1
