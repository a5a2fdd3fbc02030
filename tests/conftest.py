"""Shared fixtures: an app on a temporary local store, real image files, signed Mailgun deliveries."""

from __future__ import annotations

import os

import pytest

from inbox import create_app
from inbox.spool import SpoolFile
from tests.harness import IMAGE_FORMATS, INBOX, SIGNING_KEY, mailgun_form, make_image
from tests.processes import free_port, running, scrubbed_environ


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    """Real files of every accepted type, keyed by extension."""
    return {extension: make_image(extension) for extension in IMAGE_FORMATS}


@pytest.fixture
def clean_environ(monkeypatch):
    """This process's environment without the service's settings (MAILGUN_*, STORAGE_*, INBOX_*)."""
    for name in set(os.environ) - set(scrubbed_environ()):
        monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path) -> dict:
    return {
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "INBOX_PUBLISHERS": "*",
        "STORAGE_PATH": str(tmp_path / "storage"),
    }


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def deliver(client):
    """POST a signed Mailgun form to the webhook; returns the response."""

    def post(*attachments, **fields):
        return client.post("/webhooks/mailgun", data=mailgun_form(*attachments, **fields))

    return post


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`inbox serve` in a fresh folder, as a newcomer runs the README's command: no service environment."""
    folder = tmp_path_factory.mktemp("try-out")
    port = free_port()
    with running(
        [INBOX, "serve", "--port", str(port), "--workers", "1"],
        port=port,
        env=scrubbed_environ(),
        cwd=folder,
        logs=tmp_path_factory.mktemp("serve-logs"),
    ):
        yield folder, f"http://127.0.0.1:{port}"


@pytest.fixture
def new_spool(tmp_path):
    """Makes spool files (at most 64 MiB each) in the test's folder; they are removed after it."""
    spools = []

    def make():
        spools.append(SpoolFile(str(tmp_path), 64 * 1024 * 1024))
        return spools[-1]

    yield make
    for spool in spools:
        spool.discard()
