"""Answers the requests gunicorn refuses itself (a bad request line or header, one over its limits) in JSON.

gunicorn refuses these before the app sees them, with an HTML page; the app refuses bad input
with `{"error": status, "reason": ...}`. gunicorn still decides the status and logs the
refusal; only its page is replaced.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine


class JsonRefusals:
    """gunicorn worker mixin: the worker's own error answers in the app's JSON form."""

    def handle_error(self, req, client, addr, exc) -> None:
        page = _CapturedPage()
        super().handle_error(req, page, addr, exc)  # gunicorn's status and log lines, its page to `page`
        if not page.status_line:
            return
        try:
            util.write_nonblock(client, json_refusal(page.status_line, refusal_reason(exc, self.cfg)))
        except Exception:  # as gunicorn does: the client may be gone
            self.log.debug("Failed to send error message.")


def refusal_reason(exc: Exception, cfg) -> str:
    """What was wrong with the request, for its sender (nothing of the server's own errors)."""
    if isinstance(exc, LimitRequestLine):
        limit = exc.max_size if isinstance(exc.max_size, int) else cfg.limit_request_line
        return f"the request line is over {limit} bytes"
    if isinstance(exc, LimitRequestHeaders):
        return (
            f"the request's headers are over this server's limits: at most {cfg.limit_request_fields} header "
            f"fields, each at most {cfg.limit_request_field_size} bytes"
        )
    return str(exc)


def json_refusal(status_line: str, reason: str) -> bytes:
    """A whole HTTP answer closing the connection: `status_line` and `{"error": status, "reason": reason}`."""
    status = int(status_line.split(" ", 2)[1])
    if status == 500:  # the server's own fault; a 501 is the client's transfer coding, which `reason` names
        reason = "internal error; the server log has the details"
    body = json.dumps({"error": status, "reason": reason}, separators=(",", ":")).encode() + b"\n"
    head = (
        f"{status_line}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _CapturedPage:
    """Stands in for the client socket while gunicorn writes its page (util.write_error), keeping its status line."""

    status_line = ""

    def gettimeout(self) -> float:
        return 0.0  # non-blocking already: gunicorn writes at once

    def sendall(self, data: bytes) -> None:
        if not self.status_line:
            self.status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
