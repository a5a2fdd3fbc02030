"""Mailgun's Routes API: keeps the one route that sends the inbox address to the webhook (used by routes_setup.py).

What the route says, and which routes are ours, is route_spec.py's.
"""

from __future__ import annotations

import requests
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from .mailgun import NOTHING_DONE_STATUSES, RETRY_STATUSES, TIMEOUT, api_session, said
from .route_spec import is_current, is_ours

API_URLS = {"us": "https://api.mailgun.net/v3", "eu": "https://api.eu.mailgun.net/v3"}
PAGE_SIZE = 100
CREATE_UNSURE = "; the route may have been created all the same: run this again, it finds it and changes nothing"


class MailgunAPIError(Exception):
    """Mailgun refused or failed a Routes API call; the message says what to fix."""


class MailgunAuthError(MailgunAPIError):
    """The API key is wrong, cannot manage routes (a sending key), or belongs to the other region."""


class MailgunUnreachable(MailgunAPIError):
    """No answer from Mailgun: DNS, connection refused, or a timeout."""


class RouteNotFound(MailgunAPIError):
    """Mailgun answered 404."""


class RoutesClient:
    """Mailgun's Routes API (account-wide, one region), with timeouts and retries that cannot duplicate."""

    def __init__(
        self,
        api_key: str,
        api_url: str = API_URLS["us"],
        *,
        timeout=TIMEOUT,
        retries: int = 4,
        backoff_factor: float = 0.5,
    ):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        limits = {
            "total": retries,
            "connect": retries,
            "status": retries,
            "backoff_factor": backoff_factor,
            "raise_on_status": False,
        }
        self._session = api_session(
            api_key,
            Retry(read=retries, status_forcelist=RETRY_STATUSES, allowed_methods={"GET", "PUT", "DELETE"}, **limits),
        )
        # Connect errors are retried for every method (nothing was sent); a POST is not
        # retried once it may have reached Mailgun (see NOTHING_DONE_STATUSES): a second route.
        self._create_session = api_session(
            api_key, Retry(read=False, status_forcelist=NOTHING_DONE_STATUSES, allowed_methods={"POST"}, **limits)
        )

    def _call(self, method: str, path: str, **kwargs) -> dict:
        url = self.api_url + path
        unsure = CREATE_UNSURE if method == "POST" else ""
        session = self._create_session if method == "POST" else self._session
        try:
            response = session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise MailgunUnreachable(
                f"no connection to {url} within {self.timeout[0]} s: check MAILGUN_API_URL and the network"
            ) from None
        except requests.exceptions.RequestException as error:
            # A read timeout that used up the retries arrives as a ConnectionError around it.
            reason = getattr(error.args[0] if error.args else None, "reason", None)
            if isinstance(error, requests.exceptions.ReadTimeout) or isinstance(reason, ReadTimeoutError):
                raise MailgunUnreachable(
                    f"Mailgun did not answer {method} {url} within {self.timeout[1]} s"
                    + (unsure or "; try again later")
                ) from None
            raise MailgunUnreachable(
                f"cannot reach {url} ({type(error).__name__}): check MAILGUN_API_URL and the network{unsure}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.ok:
            return body
        status = response.status_code
        message = said(response)
        if status in (401, 403):
            raise MailgunAuthError(
                f"Mailgun refused the API key (HTTP {status}) at {self.api_url}: MAILGUN_API_KEY must be the "
                "account's private API key, not the HTTP webhook signing key nor a domain sending key, "
                "and an EU account needs --region eu"
            )
        if status == 404:
            raise RouteNotFound(f"{method} {url}: HTTP 404 {message}; check MAILGUN_API_URL (it ends in /v3)")
        if status in RETRY_STATUSES:
            if status in NOTHING_DONE_STATUSES:
                unsure = ""
            raise MailgunAPIError(
                f"Mailgun failed {method} {url} (HTTP {status} {message}){unsure or '; try again later'}"
            )
        raise MailgunAPIError(f"Mailgun rejected {method} {url} (HTTP {status}): {message}")

    def routes(self):
        """Every route on the account, page by page."""
        skip = 0
        while True:
            page = self._call("GET", "/routes", params={"skip": skip, "limit": PAGE_SIZE})
            items = page.get("items") or []
            yield from items
            skip += len(items)
            if not items or skip >= page.get("total_count", 0):
                return

    def create(self, spec: dict) -> dict:
        return self._call("POST", "/routes", data=_form(spec))["route"]

    def update(self, route_id: str, spec: dict) -> None:
        self._call("PUT", f"/routes/{route_id}", data=_form(spec))

    def delete(self, route_id: str) -> None:
        try:
            self._call("DELETE", f"/routes/{route_id}")
        except RouteNotFound:
            pass  # already gone, e.g. a retried DELETE whose first answer was lost


def _form(spec: dict) -> list[tuple[str, str]]:
    fields = [
        ("priority", str(spec["priority"])),
        ("description", spec["description"]),
        ("expression", spec["expression"]),
    ]
    return fields + [("action", action) for action in spec["actions"]]


def our_routes(client: RoutesClient, address: str | None = None) -> list[dict]:
    """Routes this tool made (for `address`, when given), from every page."""
    return [route for route in client.routes() if is_ours(route, address)]


def ensure_route(client: RoutesClient, address: str, spec: dict, *, dry_run: bool = False) -> tuple[str, dict]:
    """Make `spec` the one route marked for `address`: ("created" | "updated" | "unchanged", route)."""
    route, *duplicates = our_routes(client, address) or [None]
    if route is None:
        return "created", spec if dry_run else client.create(spec)
    if not duplicates and is_current(route, spec):
        return "unchanged", route
    if not dry_run:
        # Two of our routes (a lost answer to a POST, or a hand-made copy) would race for the mail.
        for duplicate in duplicates:
            client.delete(duplicate["id"])
        if not is_current(route, spec):
            client.update(route["id"], spec)
    return "updated", {**route, **spec}


def delete_routes(client: RoutesClient, address: str, *, dry_run: bool = False) -> list[dict]:
    """Delete the routes marked for `address` (nobody else's); returns them."""
    routes = our_routes(client, address)
    if not dry_run:
        for route in routes:
            client.delete(route["id"])
    return routes
