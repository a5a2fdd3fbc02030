"""The floor for bench.py: a WSGI app that only reads and discards the request body, 1 MiB at a time.

Whatever the service costs beyond this is the price of parsing, checking and storing.
"""

CHUNK = 1024 * 1024


def app(environ, start_response):
    stream = environ["wsgi.input"]
    while stream.read(CHUNK):
        pass
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
