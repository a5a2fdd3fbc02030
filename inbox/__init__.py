"""inbox: a Mailgun inbound webhook that stores emailed photos in a public libcloud container."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from . import files, health, spool, store_opening, webhook
from .config import ConfigError, load_config
from .form import InboxRequest
from .log_lines import OneLineFormatter

__all__ = ["create_app", "ConfigError"]


def create_app(config: Mapping | None = None) -> Flask:
    """Build the app from `config` (keys as the environment variables), or from the environment."""
    app = Flask(__name__, static_folder=None)
    app.request_class = InboxRequest
    app.config.update(load_config(os.environ if config is None else config))
    _configure_logging()
    store = store_opening.init_app(app)  # raises ConfigError naming the provider, the step and what to fix
    spool.init_app(app, store.spool_folder, writeback=store.links_spool)
    hops = app.config["INBOX_TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
    # Werkzeug would answer a doubled slash with a redirect built from the Host (or, behind a
    # trusted proxy, X-Forwarded-Host) the client named; no URL this service hands out has one.
    app.url_map.merge_slashes = False
    for module in (webhook, files, health):
        app.register_blueprint(module.bp)
    app.register_error_handler(HTTPException, _answer_http_error)
    app.register_error_handler(Exception, _answer_unexpected_error)
    return app


def _configure_logging() -> None:
    logger = logging.getLogger("inbox")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _answer_http_error(error: HTTPException):
    # An oversized body is answered at once; gunicorn (>= 27) closes the connection gracefully,
    # so the client still reads this 413 (tests/test_procfile.py sends 150 MB to prove it).
    if isinstance(error, RequestEntityTooLarge):
        return webhook.refuse(413, _too_large())
    response, status = webhook.refuse(error.code, error.description)
    # The headers HTTP requires with the status: Allow (405), Content-Range (416), ...
    response.headers.extend((name, value) for name, value in error.get_headers() if name.lower() != "content-type")
    return response, status


def _too_large() -> str:
    config, mib = current_app.config, 1024 * 1024
    return (
        f"the post is larger than this service takes: at most {config['MAX_CONTENT_LENGTH'] // mib} MiB in all, "
        f"{config['MAX_FORM_MEMORY_SIZE'] // mib} MiB per text field and {config['MAX_FORM_PARTS']} parts"
    )


def _answer_unexpected_error(error: Exception):
    logging.getLogger("inbox").exception("unexpected error on %s %s", request.method, request.path)
    return jsonify(error=500, reason="internal error; the server log has the details"), 500
