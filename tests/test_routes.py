"""routes_setup.py, the route it asks for (inbox/route_spec.py) and the Routes API client (inbox/routes.py).

Mailgun is faked with `responses`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

import routes_setup  # a script at the repository root, which pytest puts on sys.path
from inbox.route_spec import recipient_pattern, route_spec
from inbox.routes import MailgunAPIError, MailgunUnreachable, RoutesClient

API = "https://api.mailgun.net/v3"
EU_API = "https://api.eu.mailgun.net/v3"
ADDRESS = "photos@example.com"
HOOK = "https://host/webhooks/mailgun"
NEW_HOOK = "https://new-host/webhooks/mailgun"
EXPRESSION = r'match_recipient("(?i)^photos@example\.com$")'
SETUP = ["--recipient", ADDRESS, "--url", HOOK]


def foreign(count: int, start: int = 0) -> list[dict]:
    """Routes someone else made on the same account."""
    return [
        {
            "id": f"f{number:023x}",
            "priority": 1,
            "description": f"support desk {number}",
            "expression": f'match_recipient("user{number}@example.com")',
            "actions": ['forward("https://other/")'],
            "created_at": "Mon, 01 Jan 2024 00:00:00 GMT",
        }
        for number in range(start, start + count)
    ]


def ours(route_id: str, url: str = HOOK, address: str = ADDRESS) -> dict:
    return {
        "id": route_id,
        "priority": 0,
        "description": f"inbox:{address}",
        "expression": f'match_recipient("{recipient_pattern(address)}")',
        "actions": [f'forward("{url}")', "stop()"],
        "created_at": "Mon, 01 Jan 2024 00:00:00 GMT",
    }


class FakeMailgun:
    """The Routes API of one account: paged listing, create, update, delete."""

    def __init__(self, mock: responses.RequestsMock, base: str = API, routes: list[dict] = ()):
        self.mock, self.routes, self.created = mock, list(routes), 0
        one = re.compile(re.escape(base) + r"/routes/(\w+)$")
        mock.add_callback("GET", f"{base}/routes", callback=self.list)
        mock.add_callback("POST", f"{base}/routes", callback=self.create)
        mock.add_callback("PUT", one, callback=self.update)
        mock.add_callback("DELETE", one, callback=self.delete)

    def list(self, request):
        query = dict(parse_qsl(urlsplit(request.url).query))
        skip, limit = int(query.get("skip", 0)), int(query.get("limit", 100))
        return 200, {}, json.dumps({"total_count": len(self.routes), "items": self.routes[skip : skip + limit]})

    def create(self, request):
        self.created += 1
        route = {"id": f"5f1e{self.created:020x}", "created_at": "Tue, 02 Jan 2024 00:00:00 GMT", **fields(request)}
        self.routes.append(route)
        return 200, {}, json.dumps({"message": "Route has been created", "route": route})

    def find(self, request) -> dict | None:
        route_id = request.url.rsplit("/", 1)[1]
        return next((route for route in self.routes if route["id"] == route_id), None)

    def update(self, request):
        route = self.find(request)
        if route is None:
            return 404, {}, json.dumps({"message": "Route not found"})
        route.update(fields(request))
        return 200, {}, json.dumps({"message": "Route has been updated", **route})

    def delete(self, request):
        route = self.find(request)
        if route is None:
            return 404, {}, json.dumps({"message": "Route not found"})
        self.routes.remove(route)
        return 200, {}, json.dumps({"message": "Route has been deleted", "id": route["id"]})

    def ours(self) -> list[dict]:
        return [route for route in self.routes if route["description"].startswith("inbox:")]

    def writes(self) -> list[str]:
        return [call.request.method for call in self.mock.calls if call.request.method != "GET"]


def fields(request) -> dict:
    form = parse_qsl(request.body)
    route = {key: value for key, value in form if key != "action"}
    route["priority"] = int(route["priority"])
    return {**route, "actions": [value for key, value in form if key == "action"]}


@pytest.fixture(autouse=True)
def environment(clean_environ, monkeypatch):
    monkeypatch.setenv("MAILGUN_API_KEY", "private-api-key")


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def mailgun(mock):
    return FakeMailgun(mock, routes=foreign(3))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = routes_setup.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_first_run_creates_one_route_forwarding_the_address_to_the_webhook(mailgun, capsys):
    code, out, err = run(capsys, *SETUP)

    [route] = mailgun.ours()
    assert (code, err) == (0, "")
    assert out == f'created route {route["id"]} : {EXPRESSION} -> forward("{HOOK}"), stop()'
    assert mailgun.routes[:3] == foreign(3)


def test_create_sends_the_form_fields_in_mailguns_order(mailgun, capsys):
    run(capsys, *SETUP, "--priority", "5", "--description", "photo inbox")

    [post] = [call for call in mailgun.mock.calls if call.request.method == "POST"]
    assert parse_qsl(post.request.body) == [
        ("priority", "5"),
        ("description", "inbox:photos@example.com photo inbox"),
        ("expression", EXPRESSION),
        ("action", f'forward("{HOOK}")'),
        ("action", "stop()"),
    ]


def test_running_again_changes_nothing(mailgun, capsys):
    run(capsys, *SETUP)
    code, out, _ = run(capsys, *SETUP)

    [route] = mailgun.ours()
    assert code == 0
    assert out == f'unchanged route {route["id"]} : {EXPRESSION} -> forward("{HOOK}"), stop()'
    assert mailgun.writes() == ["POST"]


def test_a_new_url_updates_the_same_route_in_place(mailgun, capsys):
    run(capsys, *SETUP)
    [before] = copy.deepcopy(mailgun.ours())
    code, out, _ = run(capsys, "--recipient", ADDRESS, "--url", NEW_HOOK)

    [after] = mailgun.ours()
    assert code == 0
    assert out == f'updated route {before["id"]} : {EXPRESSION} -> forward("{NEW_HOOK}"), stop()'
    assert after["id"] == before["id"] and after["actions"] == [f'forward("{NEW_HOOK}")', "stop()"]
    put = mailgun.mock.calls[-1].request
    assert (put.method, put.url) == ("PUT", f"{API}/routes/{before['id']}")
    assert parse_qsl(put.body) == [
        ("priority", "0"),
        ("description", "inbox:photos@example.com"),
        ("expression", EXPRESSION),
        ("action", f'forward("{NEW_HOOK}")'),
        ("action", "stop()"),
    ]


@pytest.mark.parametrize("url, outcome, writes", [(HOOK, "unchanged", []), (NEW_HOOK, "updated", ["PUT"])])
def test_finds_its_route_among_hundreds_on_the_third_page(mock, capsys, url, outcome, writes):
    others = foreign(230) + foreign(20, start=230)
    mailgun = FakeMailgun(mock, routes=others[:230] + [ours("5f1e0000000000000000beef")] + others[230:])
    code, out, _ = run(capsys, "--recipient", ADDRESS, "--url", url)

    assert (code, out.split(" : ")[0]) == (0, f"{outcome} route 5f1e0000000000000000beef")
    skips = [
        dict(parse_qsl(urlsplit(call.request.url).query))["skip"] for call in mock.calls if call.request.method == "GET"
    ]
    assert skips == ["0", "100", "200"]
    assert mailgun.writes() == writes
    assert [route for route in mailgun.routes if route["id"] != "5f1e0000000000000000beef"] == others


def test_routes_it_did_not_make_are_left_alone(mock, capsys):
    hand_made = {**ours("ab00000000000000000000cd"), "description": "photos (made in the control panel)"}
    other_inbox = ours("ab00000000000000000000ef", address="photos@example.com.evil")
    mailgun = FakeMailgun(mock, routes=[hand_made, other_inbox])

    code, out, _ = run(capsys, *SETUP)

    assert (code, out.split(" route ")[0]) == (0, "created")
    assert mailgun.routes[:2] == [hand_made, other_inbox] and mailgun.writes() == ["POST"]


def test_a_duplicate_of_its_route_is_removed(mock, capsys):
    mailgun = FakeMailgun(mock, routes=[ours("5f1e00000000000000000001"), ours("5f1e00000000000000000002")])
    code, out, _ = run(capsys, *SETUP)

    assert (code, out.split(" : ")[0]) == (0, "updated route 5f1e00000000000000000001")
    assert [route["id"] for route in mailgun.routes] == ["5f1e00000000000000000001"]


def test_delete_removes_only_its_route(mock, capsys):
    keep = foreign(2) + [ours("ab00000000000000000000ef", address="photos@example.com.evil")]
    mailgun = FakeMailgun(mock, routes=keep[:1] + [ours("5f1e0000000000000000beef")] + keep[1:])

    code, out, _ = run(capsys, "--recipient", ADDRESS, "--delete")
    assert (code, out) == (0, f'deleted route 5f1e0000000000000000beef : {EXPRESSION} -> forward("{HOOK}"), stop()')
    assert mailgun.routes == keep

    code, out, _ = run(capsys, "--recipient", ADDRESS, "--delete")
    assert (code, out) == (0, "unchanged: no route for photos@example.com to delete")


def test_list_shows_only_its_routes_from_every_page(mock, capsys):
    FakeMailgun(
        mock,
        routes=foreign(150)
        + [ours("5f1e00000000000000000001")]
        + foreign(60, start=150)
        + [ours("5f1e00000000000000000002", NEW_HOOK, "scans@example.com")],
    )

    code, out, _ = run(capsys, "--list")

    assert code == 0
    assert out.splitlines() == [
        (
            f'route 5f1e00000000000000000001 priority 0 "inbox:photos@example.com" : {EXPRESSION} -> '
            f'forward("{HOOK}"), stop()'
        ),
        (
            r'route 5f1e00000000000000000002 priority 0 "inbox:scans@example.com" : '
            rf'match_recipient("(?i)^scans@example\.com$") -> forward("{NEW_HOOK}"), stop()'
        ),
    ]


def test_list_shows_every_address_though_inbox_address_names_the_new_one(mock, capsys, monkeypatch):
    monkeypatch.setenv("INBOX_ADDRESS", "scans@example.com")  # moved here; the old route still delivers mail
    FakeMailgun(
        mock, routes=[ours("5f1e00000000000000000001"), ours("5f1e00000000000000000002", NEW_HOOK, "scans@example.com")]
    )

    code, out, _ = run(capsys, "--list")
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == [
        "5f1e00000000000000000001",
        "5f1e00000000000000000002",
    ]

    code, out, _ = run(capsys, "--list", "--recipient", ADDRESS)
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == ["5f1e00000000000000000001"]


@pytest.mark.parametrize(
    "routes, argv, expected",
    [
        ([], SETUP, f'would create route (new) : {EXPRESSION} -> forward("{HOOK}"), stop()'),
        (
            [ours("5f1e0000000000000000beef")],
            ["--recipient", ADDRESS, "--url", NEW_HOOK],
            f'would update route 5f1e0000000000000000beef : {EXPRESSION} -> forward("{NEW_HOOK}"), stop()',
        ),
        (
            [ours("5f1e0000000000000000beef")],
            ["--recipient", ADDRESS, "--delete"],
            f'would delete route 5f1e0000000000000000beef : {EXPRESSION} -> forward("{HOOK}"), stop()',
        ),
    ],
)
def test_dry_run_shows_the_plan_and_writes_nothing(mock, capsys, routes, argv, expected):
    mailgun = FakeMailgun(mock, routes=routes)
    code, out, _ = run(capsys, *argv, "--dry-run")

    assert (code, out) == (0, expected)
    assert mailgun.writes() == [] and mailgun.routes == routes


@pytest.mark.parametrize("argv, api_url", [(["--region", "eu"], None), ([], EU_API)])
def test_an_eu_account_is_managed_on_the_eu_api(mock, capsys, monkeypatch, argv, api_url):
    if api_url:
        monkeypatch.setenv("MAILGUN_API_URL", api_url)
    mailgun = FakeMailgun(mock, base=EU_API)  # a call to the US API would fail: nothing answers there

    code, out, err = run(capsys, *SETUP, *argv)

    assert (code, err, out.split(" route ")[0]) == (0, "", "created")
    assert {urlsplit(call.request.url).netloc for call in mock.calls} == {"api.eu.mailgun.net"}
    assert len(mailgun.ours()) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_says_the_private_api_key_is_needed(mock, capsys, status):
    mock.get(f"{API}/routes", status=status, body="Forbidden")
    code, out, err = run(capsys, *SETUP)

    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert "private API key" in err and "not the HTTP webhook signing key nor a domain sending key" in err


def test_mailguns_reason_for_refusing_a_route_is_shown(mock, capsys):
    mock.get(f"{API}/routes", json={"total_count": 0, "items": []})
    mock.post(f"{API}/routes", status=400, json={"message": "'expression' parameter is not a valid expression"})
    code, _, err = run(capsys, *SETUP)

    assert code == 1
    assert err == (
        f"routes_setup.py: Mailgun rejected POST {API}/routes (HTTP 400): "
        "'expression' parameter is not a valid expression"
    )


def test_an_api_url_without_v3_is_refused_before_calling_mailgun(mock, capsys, monkeypatch):
    monkeypatch.setenv("MAILGUN_API_URL", "https://api.mailgun.net")
    with pytest.raises(SystemExit) as exit:
        routes_setup.main(SETUP)

    assert exit.value.code == 2 and "MAILGUN_API_URL='https://api.mailgun.net' does not end in /v3" in (
        capsys.readouterr().err
    )
    assert len(mock.calls) == 0


def test_the_api_key_is_read_as_the_service_reads_it_without_a_pasted_newline(mailgun, capsys, monkeypatch):
    monkeypatch.setenv("MAILGUN_API_KEY", "private-api-key\n")  # as read from a secrets file
    code, out, err = run(capsys, *SETUP)

    assert (code, err, out.split(" route ")[0]) == (0, "", "created")
    assert {call.request.headers["Authorization"] for call in mailgun.mock.calls} == {
        requests.auth._basic_auth_str("api", "private-api-key")
    }


@pytest.mark.parametrize(
    "error, message",
    [
        (requests.exceptions.ConnectTimeout(), f"no connection to {API}/routes within 5 s"),
        (requests.exceptions.ReadTimeout(), f"Mailgun did not answer GET {API}/routes within 30 s; try again later"),
        (requests.exceptions.ConnectionError("Name or service not known"), f"cannot reach {API}/routes"),
    ],
)
def test_network_failures_are_one_line_errors(mock, capsys, error, message):
    mock.get(f"{API}/routes", body=error)
    code, out, err = run(capsys, *SETUP)

    assert (code, out) == (1, "")
    assert err.startswith(f"routes_setup.py: {message}") and len(err.splitlines()) == 1


def test_listing_is_retried_after_server_errors(mock):
    for status in (502, 500, 429):
        mock.get(f"{API}/routes", status=status, json={"message": "try later"})
    mock.get(f"{API}/routes", json={"total_count": 1, "items": [ours("5f1e0000000000000000beef")]})

    client = RoutesClient("private-api-key", API, backoff_factor=0)
    assert [route["id"] for route in client.routes()] == ["5f1e0000000000000000beef"]
    assert len(mock.calls) == 4


def test_listing_gives_up_after_the_retries(mock):
    mock.get(f"{API}/routes", status=503, json={"message": "Service Unavailable"})
    client = RoutesClient("private-api-key", API, retries=2, backoff_factor=0)

    with pytest.raises(MailgunAPIError, match=r"HTTP 503 Service Unavailable\); try again later"):
        list(client.routes())
    assert len(mock.calls) == 3


@pytest.mark.parametrize("status, code, posts", [(503, 0, 2), (429, 0, 2), (502, 1, 1), (500, 1, 1)])
def test_create_is_sent_again_only_when_mailgun_did_nothing(mock, capsys, status, code, posts):
    mock.post(f"{API}/routes", status=status, json={"message": "oops"})
    mailgun = FakeMailgun(mock)

    assert run(capsys, *SETUP)[0] == code
    assert mailgun.writes() == ["POST"] * posts


@pytest.mark.parametrize("status", [502, 500])
def test_a_create_that_may_have_worked_says_to_run_again(mock, capsys, status):
    mock.get(f"{API}/routes", json={"total_count": 0, "items": []})
    mock.post(f"{API}/routes", status=status, body="Bad Gateway")
    code, _, err = run(capsys, *SETUP)

    assert code == 1
    assert err.endswith("the route may have been created all the same: run this again, it finds it and changes nothing")


def test_store_registers_store_with_notify(mailgun, capsys):
    run(capsys, *SETUP, "--store")
    assert mailgun.ours()[0]["actions"] == [f'store(notify="{HOOK}")', "stop()"]


def test_pattern_registers_the_regex_as_given(mailgun, capsys):
    pattern = r"^photos(\+.*)?@example\.com$"
    run(capsys, *SETUP, "--pattern", pattern)
    [route] = mailgun.ours()
    assert (route["expression"], route["description"]) == (f'match_recipient("{pattern}")', "inbox:photos@example.com")


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*SETUP, "--pattern", "photos(@example"], "is not a regular expression"),
        (["--recipient", "photos", "--url", HOOK], "is not an e-mail address"),
        (["--recipient", ADDRESS, "--url", "host/webhooks/mailgun"], "is not an absolute http(s) URL"),
        (["--url", HOOK], "--recipient is required (or set INBOX_ADDRESS)"),
    ],
)
def test_usage_errors_exit_2_before_anything_is_written(mailgun, capsys, argv, message):
    with pytest.raises(SystemExit) as exit:
        routes_setup.main(argv)
    assert exit.value.code == 2 and message in capsys.readouterr().err
    assert mailgun.writes() == []


def test_a_missing_api_key_is_a_usage_error(mailgun, capsys, monkeypatch):
    monkeypatch.delenv("MAILGUN_API_KEY")
    with pytest.raises(SystemExit) as exit:
        routes_setup.main(SETUP)
    assert exit.value.code == 2 and "MAILGUN_API_KEY is not set" in capsys.readouterr().err
    assert len(mailgun.mock.calls) == 0


def test_address_and_url_can_come_from_the_environment(mailgun, capsys, monkeypatch):
    monkeypatch.setenv("INBOX_ADDRESS", ADDRESS)
    monkeypatch.setenv("INBOX_WEBHOOK_URL", HOOK)
    code, out, _ = run(capsys)
    assert code == 0 and out.endswith(f'{EXPRESSION} -> forward("{HOOK}"), stop()')


def test_the_pattern_matches_the_address_in_any_case_and_nothing_else():
    pattern = recipient_pattern("photos@example.com")
    assert pattern == r"(?i)^photos@example\.com$"
    assert re.search(pattern, "photos@example.com") and re.search(pattern, "Photos@Example.COM")
    for other in ("photos@exampleXcom", "xphotos@example.com.evil", "photos@example.com.evil", "xphotos@example.com"):
        assert not re.search(pattern, other), other
    # Only regex metacharacters are escaped: '-', '@' and '_' stay bare.
    address = "first.last+tag_1@sub-domain.example.com"
    assert recipient_pattern(address) == r"(?i)^first\.last\+tag_1@sub-domain\.example\.com$"
    assert re.search(recipient_pattern(address), address)


@pytest.fixture
def slow_mailgun(monkeypatch):
    """A server on 127.0.0.1 that answers too late, counting the requests that reach it."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    arrived = []

    class Handler(BaseHTTPRequestHandler):
        def answer_late(self):
            arrived.append(self.command)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(0.3)

        do_GET = do_POST = answer_late

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v3", arrived
    server.shutdown()
    server.server_close()


def test_an_unanswered_listing_is_asked_again_but_a_create_is_sent_once(slow_mailgun):
    api_url, arrived = slow_mailgun
    client = RoutesClient("private-api-key", api_url, timeout=(1, 0.05), retries=2, backoff_factor=0)

    with pytest.raises(MailgunUnreachable, match="did not answer GET .* within 0.05 s; try again later"):
        list(client.routes())
    with pytest.raises(MailgunUnreachable, match="the route may have been created all the same"):
        client.create(route_spec(ADDRESS, HOOK))
    assert arrived == ["GET", "GET", "GET", "POST"]


MIME_HOOK = "https://host/webhooks/mailgun/mime"


def test_mime_registers_the_raw_mime_webhook(mailgun, capsys):
    code, _, _ = run(capsys, "--recipient", ADDRESS, "--url", MIME_HOOK, "--mime")
    assert code == 0
    assert mailgun.ours()[0]["actions"] == [f'forward("{MIME_HOOK}")', "stop()"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--url", "http://host/webhooks/mailgun"], "is not https"),
        (["--url", "http://host/webhooks/mailgun"], "unencrypted (--allow-http to register it all the same)"),
        (["--url", "https://127.0.0.1:8000/webhooks/mailgun"], "local or private host that Mailgun cannot reach"),
        (["--url", "https://localhost/webhooks/mailgun"], "(--force to register it all the same)"),
        (["--url", "https://10.1.2.3/webhooks/mailgun"], "local or private host"),
        (["--url", "https://[::1]/webhooks/mailgun"], "local or private host"),
        (["--url", "https://host/hooks/mailgun"], "the service does not answer at '/hooks/mailgun'"),
        (["--url", "https://host/webhooks/mailgun/"], "the service does not answer at '/webhooks/mailgun/'"),
        (
            ["--url", "https://host/webhooks/mailgun", "--mime"],
            "--mime needs the URL that ends in /webhooks/mailgun/mime",
        ),
        (["--url", MIME_HOOK], "a URL ending in 'mime' makes Mailgun post the raw message: add --mime"),
        (["--url", MIME_HOOK, "--mime", "--store"], "--mime and --store do not go together"),
        (["--url", HOOK, "--pattern", r".*@example\.com"], r"matches every address of example.com"),
        (["--url", HOOK, "--pattern", "example.com"], "matches every address of example.com"),
        (["--url", HOOK, "--pattern", ".*"], "anchor it to the inbox address (--force"),
    ],
)
def test_a_route_that_would_lose_mail_is_refused_with_the_reason(mailgun, capsys, argv, message):
    with pytest.raises(SystemExit) as exit:
        routes_setup.main(["--recipient", ADDRESS, *argv])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert mailgun.writes() == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "http://host/webhooks/mailgun", "--allow-http"],
        ["--url", "https://proxy.example.net/inbox/webhooks/mailgun"],
        ["--url", "https://127.0.0.1:8000/webhooks/mailgun", "--force"],
        ["--url", "https://host/other", "--force"],
        ["--url", HOOK, "--pattern", r".*@example\.com", "--force"],
        ["--url", HOOK, "--pattern", r"^(photos|pictures)@example\.com$"],
    ],
)
def test_the_flags_named_in_the_refusals_override_them(mailgun, capsys, argv):
    code, out, err = run(capsys, "--recipient", ADDRESS, *argv)
    assert (code, err) == (0, "")
    assert out.startswith("created route")
    assert len(mailgun.ours()) == 1


def test_plain_http_to_a_loopback_host_needs_both_flags(mailgun, capsys):
    with pytest.raises(SystemExit):
        routes_setup.main(["--recipient", ADDRESS, "--url", "http://127.0.0.1/webhooks/mailgun", "--allow-http"])
    assert "--force" in capsys.readouterr().err
    code, _, _ = run(
        capsys, "--recipient", ADDRESS, "--url", "http://127.0.0.1/webhooks/mailgun", "--allow-http", "--force"
    )
    assert code == 0
