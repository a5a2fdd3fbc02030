"""Storage requests give up after STORAGE_TIMEOUT seconds against an endpoint that accepts and never answers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from inbox import create_app, providers
from inbox.config import ConfigError
from inbox.storage import STORAGE_ERRORS, check_access
from tests.test_providers import SIGNING, s3_settings

TIMEOUT = 1.0


@pytest.fixture
def hung_endpoint():
    """A port on 127.0.0.1 that accepts connections and reads, but never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for connection in held:
        connection.close()


def settings(provider: str, port: int) -> dict:
    endpoint = {"STORAGE_HOST": "127.0.0.1", "STORAGE_PORT": port, "STORAGE_SECURE": False}
    return {
        "s3": {**endpoint, "STORAGE_KEY": "key", "STORAGE_SECRET": "secret"},
        "azure_blobs": {**endpoint, "STORAGE_KEY": "devstoreaccount1", "STORAGE_SECRET": "c2VjcmV0"},
        "openstack_swift": {
            "STORAGE_KEY": "test:tester",
            "STORAGE_SECRET": "testing",
            "STORAGE_AUTH_URL": f"http://127.0.0.1:{port}/auth",
            "STORAGE_AUTH_VERSION": "1.0",
        },
        "cloudfiles": {
            "STORAGE_KEY": "user",
            "STORAGE_SECRET": "api-key",
            "STORAGE_AUTH_URL": f"http://127.0.0.1:{port}",
        },
    }[provider] | {"STORAGE_PROVIDER": provider, "STORAGE_TIMEOUT": str(TIMEOUT)}


@pytest.mark.parametrize("provider", ["s3", "azure_blobs", "openstack_swift", "cloudfiles"])
def test_a_hung_storage_endpoint_fails_within_the_timeout(provider, hung_endpoint):
    config = settings(provider, hung_endpoint)
    started = time.monotonic()
    with pytest.raises(STORAGE_ERRORS):
        driver = providers.PROVIDERS[provider].open(config)  # Swift v1 signs in here
        check_access(driver.get_container("images"))
    took = time.monotonic() - started
    assert TIMEOUT <= took < TIMEOUT + 3, f"gave up after {took:.1f} s (libcloud's own default: 60 s)"


def test_google_storage_driver_gets_the_timeout_too():
    driver = providers.PROVIDERS["google_storage"].open(
        {"STORAGE_KEY": "GOOGTS7C7FUP3AIRVJTE2BCD", "STORAGE_SECRET": "secret", "STORAGE_TIMEOUT": "2.5"}
    )
    assert driver.connection.timeout == 2.5


def test_storage_timeout_defaults_to_ten_seconds_and_accepts_a_number_or_its_text():
    assert providers.storage_timeout({}) == 10
    assert providers.storage_timeout({"STORAGE_TIMEOUT": " 2.5 "}) == 2.5
    assert providers.storage_timeout({"STORAGE_TIMEOUT": 30}) == 30


@pytest.mark.parametrize("value", ["", "ten", "0", "-1", "nan", "inf", "1e9", "\u0663"])
def test_storage_timeout_refuses_what_is_not_a_sane_number_of_seconds(value):
    with pytest.raises(ConfigError, match="STORAGE_TIMEOUT"):
        providers.storage_timeout({"STORAGE_TIMEOUT": value})


def test_healthz_answers_503_within_the_default_timeout_when_storage_hangs(moto_s3, tcp_link):
    link = tcp_link(moto_s3.port)
    client = create_app({**SIGNING, **s3_settings(link.port)}).test_client()
    assert client.get("/healthz").status_code == 200
    link.hang()
    started = time.monotonic()
    response = client.get("/healthz")
    took = time.monotonic() - started
    assert response.status_code == 503 and response.get_json()["reason"] == "s3 storage: timed out"  # no host
    default = providers.DEFAULT_STORAGE_TIMEOUT
    assert default <= took < default + 3, f"/healthz took {took:.1f} s (libcloud's own default: 60 s)"
