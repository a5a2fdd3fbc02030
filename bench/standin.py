"""A loopback stand-in for Mailgun's Messages API, so bench.py can time the reply without the network.

`python -m bench.standin PORT` serves 127.0.0.1:PORT: `POST /v3/<domain>/messages` reads the
form and answers as Mailgun does (`{"id": "<…>", "message": "Queued. Thank you."}`);
`GET /count` says how many messages it has queued, so the bench can tell whether replies went out.

Not the tests' tests/mailgun_standin.py: that one checks the key, parses and records every post
and logs it, and the bench would time that as the reply's cost (tried: +4.7 ms against +2.8 ms).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MESSAGES_PATH = re.compile(r"/v3/[A-Za-z0-9.-]{1,253}/messages")
MAX_BODY = 64 * 1024 * 1024


class MessagesAPI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open, as Mailgun's API does
    queued = 0
    counting = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if not MESSAGES_PATH.fullmatch(self.path) or not 0 < length <= MAX_BODY:
            self.answer(404 if length else 400, {"message": "not a Messages API request"})
            return
        self.rfile.read(length)
        with MessagesAPI.counting:
            MessagesAPI.queued += 1
        self.answer(200, {"id": f"<{uuid.uuid4()}@bench.standin>", "message": "Queued. Thank you."})

    def do_GET(self):
        if self.path == "/count":
            self.answer(200, {"queued": MessagesAPI.queued})
        else:
            self.answer(404, {"message": "only GET /count"})

    def answer(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per reply would drown the bench's own output


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), MessagesAPI).serve_forever()  # a thread per open connection
