"""Register, list or delete the Mailgun route that sends the inbox address to the webhook.

Idempotent: run it on every deploy. Exit status 0 when done or nothing to do, 1 when
Mailgun refused or could not be reached, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys

from inbox.config import ConfigError, mailgun_api_url
from inbox.route_spec import RouteSpecError, check_pattern, check_webhook_url, describe, route_spec
from inbox.routes import API_URLS, MailgunAPIError, RoutesClient, delete_routes, ensure_route, our_routes

ENVIRONMENT = """environment:
  MAILGUN_API_KEY    the account's private API key (required)
  MAILGUN_API_URL    API base, default https://api.mailgun.net/v3 (--region overrides it)
  INBOX_ADDRESS      default for --recipient (not for --list, which shows every address)
  INBOX_WEBHOOK_URL  default for --url"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routes_setup.py",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make exactly one Mailgun route send mail for the inbox address to the webhook.",
    )
    parser.add_argument(
        "--recipient",
        help="the inbox address, e.g. photos@example.com; it also names the route",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("INBOX_WEBHOOK_URL"),
        help="the webhook, e.g. https://host/webhooks/mailgun (https://host/webhooks/mailgun/mime with --mime)",
    )
    parser.add_argument(
        "--mime",
        action="store_true",
        help="Mailgun posts the raw message (body-mime) to the URL ending in /webhooks/mailgun/mime: "
        "choose it when mail must arrive exactly as sent (inline images, signed mail)",
    )
    parser.add_argument(
        "--allow-http",
        action="store_true",
        help="register a plain-http webhook (Mailgun posts mail and signature unencrypted)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="register a local or private host, a path the service does not serve, or a pattern "
        "that takes every address of the domain",
    )
    parser.add_argument("--priority", type=int, default=0, help="route priority, lower runs first (default 0)")
    parser.add_argument("--description", default="", help="text after the route's inbox:ADDRESS marker")
    parser.add_argument("--region", choices=sorted(API_URLS), help="the account's region; eu means api.eu.mailgun.net")
    parser.add_argument(
        "--store",
        action="store_true",
        help="store(notify=URL) instead of forward(URL): Mailgun keeps very large mail for us",
    )
    parser.add_argument("--pattern", help="match this regular expression instead of the escaped --recipient")
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="show this tool's routes (all addresses unless --recipient)")
    mode.add_argument("--delete", action="store_true", help="delete this tool's route for --recipient")
    return parser


def show(outcome: str, route: dict) -> str:
    return f"{outcome} route {route.get('id', '(new)')} : {describe(route)}"


def run(args, client: RoutesClient) -> None:
    if args.list:
        routes = our_routes(client, args.recipient)
        for route in routes:
            print(f'route {route["id"]} priority {route["priority"]} "{route["description"]}" : {describe(route)}')
        if not routes:
            print(f"no routes made by routes_setup.py{' for ' + args.recipient if args.recipient else ''}")
    elif args.delete:
        routes = delete_routes(client, args.recipient, dry_run=args.dry_run)
        for route in routes:
            print(show("would delete" if args.dry_run else "deleted", route))
        if not routes:
            print(f"unchanged: no route for {args.recipient} to delete")
    else:
        spec = route_spec(
            args.recipient,
            args.url,
            priority=args.priority,
            description=args.description,
            store=args.store,
            pattern=args.pattern,
        )
        check_webhook_url(args.url, mime=args.mime, allow_http=args.allow_http, force=args.force)
        if args.pattern is not None:
            check_pattern(args.pattern, args.recipient, force=args.force)
        outcome, route = ensure_route(client, args.recipient, spec, dry_run=args.dry_run)
        if args.dry_run and outcome != "unchanged":
            outcome = {"created": "would create", "updated": "would update"}[outcome]
        print(show(outcome, route))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.list:  # --list shows every address unless --recipient names one: an old route still takes mail
        args.recipient = args.recipient or os.environ.get("INBOX_ADDRESS")
    if not args.recipient and not args.list:
        parser.error("--recipient is required (or set INBOX_ADDRESS)")
    if not args.url and not (args.list or args.delete):
        parser.error("--url is required (or set INBOX_WEBHOOK_URL)")
    if args.mime and args.store:
        parser.error(
            "--mime and --store do not go together: store(notify=URL) posts a notification, not the raw "
            "message; a stored message can be fetched raw later"
        )
    api_key = os.environ.get("MAILGUN_API_KEY", "").strip()  # as the service reads it: pasted whitespace dropped
    if not api_key:
        parser.error("MAILGUN_API_KEY is not set: put the account's private API key there (Mailgun → API Keys)")
    api_url = API_URLS[args.region] if args.region else os.environ.get("MAILGUN_API_URL") or API_URLS["us"]
    try:
        api_url = mailgun_api_url(api_url)  # the check the service makes at start-up
    except ConfigError as error:
        parser.error(str(error))
    try:
        run(args, RoutesClient(api_key, api_url))
    except RouteSpecError as error:
        parser.error(str(error))
    except MailgunAPIError as error:
        print(f"routes_setup.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
