"""The `mailgun_api` fixture: the Messages API stand-in (mailgun_standin.py), one process per session.

Register it for every test module with `pytest_plugins = ["mailgun_api_fixture"]` in the top
conftest, or import `mailgun_api` and `mailgun_standin` into a test module.
"""
from __future__ import annotations

import atexit
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from servers import Server, free_port

STANDIN = Path(__file__).with_name("mailgun_standin.py")
API_KEY = "key-standin-0123456789"
DOMAIN = "mg.example.com"


@dataclass
class MailgunAPI:
    """The running stand-in: where it is, the key and domain it accepts, and its controls."""

    base: str
    api_url: str
    api_key: str = API_KEY
    domain: str = DOMAIN

    def sent(self) -> list[dict]:
        """The message posts received since the test began: {"domain", "id", "fields": {name: [values]}}."""
        return requests.get(f"{self.base}/_requests", timeout=5).json()

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next `count` message posts with `status`."""
        requests.post(f"{self.base}/_fail", params={"status": status, "count": count}, timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(f"{self.base}/_reset", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def mailgun_standin(tmp_path_factory):
    server = Server("mailgun-standin", free_port(), tmp_path_factory.mktemp("mailgun"))
    atexit.register(server.stop)
    base = f"http://127.0.0.1:{server.port}"
    server.launch("standin", sys.executable, STANDIN, server.port, API_KEY, DOMAIN)
    server.wait_until(lambda: requests.get(f"{base}/_requests", timeout=1).ok)
    yield MailgunAPI(base=base, api_url=f"{base}/v3")
    server.stop()


@pytest.fixture
def mailgun_api(mailgun_standin) -> MailgunAPI:
    """The Messages API stand-in, with no requests recorded and no failures pending."""
    mailgun_standin.reset()
    return mailgun_standin
