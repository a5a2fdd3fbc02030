"""A stand-in for Mailgun's Messages API on 127.0.0.1, run as its own process by the tests.

    python mailgun_standin.py PORT API_KEY DOMAIN...

`POST /v3/<domain>/messages` (urlencoded or multipart form, Basic auth `api`:API_KEY) answers
like Mailgun: 200 {"id", "message"}, 401 for a wrong key, 404 for a domain not served.
Test controls: `GET /_requests` lists the message posts received (fields as lists of values, and the
client port of the connection each came on),
`POST /_fail?status=503&count=N[&retry_after=S]` answers the next N posts with that status (and Retry-After: S),
`POST /_delay?seconds=S` answers each later post after S seconds, `POST /_reset` forgets all three.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

MESSAGES_PATH = re.compile(r"/v3/([^/]+)/messages")
MAX_BODY = 16 * 1024 * 1024


class State:
    def __init__(self, key: str, domains: list[str]):
        self.key, self.domains = key, set(domains)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.failures: list[int] = []
        self.retry_after: str | None = None
        self.delay = 0.0


def form_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The fields of a urlencoded or multipart/form-data body."""
    fields: dict[str, list[str]] = {}
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        mime = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in mime.iter_parts():
            value = part.get_payload(decode=True) or b""
            fields.setdefault(part.get_param("name", header="content-disposition"), []).append(value.decode())
    else:
        for name, value in parse_qsl(body.decode(), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
    return fields


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"  # keeps connections open, as Mailgun's API does

    def answer(self, status: int, body, retry_after: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/_requests":
            with self.state.lock:
                return self.answer(200, self.state.requests)
        self.answer(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self.answer(413, {"message": "Request entity too large"})
        body = self.rfile.read(length)
        if url.path == "/_fail":
            query = parse_qs(url.query)
            with self.state.lock:
                self.state.failures = [int(query["status"][0])] * int(query.get("count", ["1"])[0])
                self.state.retry_after = query.get("retry_after", [None])[0]
            return self.answer(200, {"message": "ok"})
        if url.path == "/_delay":
            self.state.delay = float(parse_qs(url.query)["seconds"][0])
            return self.answer(200, {"message": "ok"})
        if url.path == "/_reset":
            with self.state.lock:
                self.state.requests.clear()
                self.state.failures.clear()
                self.state.delay = 0.0
            return self.answer(200, {"message": "ok"})
        match = MESSAGES_PATH.fullmatch(url.path)
        if not match:
            return self.answer(404, {"message": "Not Found"})
        with self.state.lock:
            if self.state.failures:
                status = self.state.failures.pop(0)
                return self.answer(status, {"message": "Service unavailable (stand-in)"}, self.state.retry_after)
        expected = "Basic " + base64.b64encode(f"api:{self.state.key}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self.answer(401, {"message": "Invalid private key"})
        if match.group(1) not in self.state.domains:
            return self.answer(404, {"message": f"Domain not found: {match.group(1)}"})
        fields = form_fields(self.headers.get("Content-Type", ""), body)
        time.sleep(self.state.delay)
        message_id = f"<{uuid.uuid4().hex}@{match.group(1)}>"
        with self.state.lock:
            self.state.requests.append(
                {"domain": match.group(1), "id": message_id, "fields": fields, "connection": self.client_address[1]}
            )
        self.answer(200, {"id": message_id, "message": "Queued. Thank you."})

    def log_message(self, format, *args) -> None:
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def main(port: str, key: str, *domains: str) -> None:
    Handler.state = State(key, list(domains))
    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
