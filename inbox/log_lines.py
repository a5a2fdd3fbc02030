"""Log lines no client can forge: what a client sent is logged with its control characters escaped.

Both logs a deployment writes: the service's own (`OneLineFormatter`) and gunicorn's access log
(`OneLineAccessLogger`, gunicorn's `logger_class`), which holds the request line, the Referer,
the User-Agent and the user of a Basic Authorization header exactly as the client sent them.
"""

from __future__ import annotations

import logging

from gunicorn.glogging import Logger

# Control characters (C0, DEL and C1: 0x9b is a terminal's one-byte ESC [) and the Unicode line
# and paragraph separators, as escapes.
ONE_LINE = {code: f"\\x{code:02x}" for code in (*range(32), *range(0x7F, 0xA0))} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class OneLineFormatter(logging.Formatter):
    """Values a client sent (a Message-Id, a file name) can never start a forged log line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(ONE_LINE)


class OneLineAccessLogger(Logger):
    """gunicorn's logger, writing each request's access line with the client's values escaped."""

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: value.translate(ONE_LINE) if isinstance(value, str) else value for key, value in atoms.items()}
