"""upload_if_absent: a name is created once, by exactly one of any number of racing uploads, on every provider.

S3 (moto), Azure Blob (Azurite), OpenStack Swift and the local store are real; each racing
thread opens its own driver, as separate workers and instances would. Google Cloud Storage and
Rackspace Cloud Files have no local server: `responses` plays a store that honours the
provider's conditional header.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid

import pytest
import responses
from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container

from inbox import providers
from inbox.claims import race_caveat, upload_if_absent
from inbox.config import load_config
from inbox.storage import STORAGE_ERRORS
from tests.test_providers import RACKSPACE_SETTINGS, RACKSPACE_STORAGE, REAL, SIGNING, rackspace_identity

RACERS = 20


@pytest.fixture(params=["local", *REAL])
def open_store(request, tmp_path):
    """open_store() -> a container of a fresh name on the provider, through a driver of its own."""
    if request.param == "local":
        config = load_config({**SIGNING, "STORAGE_PATH": str(tmp_path / "storage")})
    else:
        fixture, settings, _ = REAL[request.param]
        config = load_config({**SIGNING, **settings(request.getfixturevalue(fixture).port)})
    name = f"claims-{uuid.uuid4().hex[:12]}"
    provider = providers.provider_for(config)
    provider.open(config).create_container(name)
    return lambda: provider.open(config).get_container(name)


def read(container, name: str) -> bytes:
    return b"".join(container.driver.download_object_as_stream(container.get_object(name)))


def test_creates_once_and_keeps_the_first_content(open_store, tmp_path):
    container = open_store()
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first claim")
    second.write_bytes(b"second claim")

    assert upload_if_absent(container, "token.json", str(first)) is True
    assert upload_if_absent(container, "token.json", str(second)) is False
    assert read(container, "token.json") == b"first claim"


def test_of_racing_uploads_of_one_name_exactly_one_creates_it(open_store, tmp_path):
    paths = []
    for number in range(RACERS):
        paths.append(tmp_path / f"claim-{number}")
        paths[-1].write_bytes(f"claim by racer {number}".encode())
    containers = [open_store() for _ in range(RACERS)]
    results: list = [None] * RACERS
    start = threading.Barrier(RACERS)

    def race(number: int) -> None:
        start.wait()
        try:
            results[number] = upload_if_absent(containers[number], "raced.json", str(paths[number]))
        except STORAGE_ERRORS as error:
            results[number] = error

    threads = [threading.Thread(target=race, args=(number,)) for number in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(isinstance(result, bool) for result in results), results
    winners = [number for number, result in enumerate(results) if result]
    assert read(containers[0], "raced.json") in {f"claim by racer {number}".encode() for number in winners}
    if race_caveat(containers[0].driver):  # Swift: said at start-up and in the README
        assert winners
    else:
        assert len(winners) == 1, f"{len(winners)} of {RACERS} racing uploads created the object"


class ConditionalStore:
    """An object store played by `responses`: PUT answers 412 where `condition` forbids an overwrite."""

    def __init__(self, base: str, condition: tuple[str, str], created: int, etag: str):
        self.base, self.condition, self.created, self.etag = base, condition, created, etag
        self.objects: dict[str, bytes] = {}
        self.puts: list = []

    def install(self, mock) -> None:
        pattern = re.compile(re.escape(self.base) + r"/.+")
        mock.add_callback(responses.PUT, pattern, callback=self.put)
        mock.add_callback(responses.HEAD, pattern, callback=self.head)
        mock.add(responses.HEAD, self.base, status=204 if self.created == 201 else 200)  # the container (Swift: 204)

    def put(self, request):
        self.puts.append(request)
        name = request.url.split("?")[0]
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        if request.headers.get(self.condition[0]) == self.condition[1] and name in self.objects:
            return 412, {}, b"<Error><Code>PreconditionFailed</Code></Error>"
        self.objects[name] = body
        return self.created, {"ETag": self.etag.format(hashlib.md5(body).hexdigest())}, b""

    def head(self, request):
        name = request.url.split("?")[0]
        if name not in self.objects:
            return 404, {}, b""
        body = self.objects[name]
        return (
            200,
            {
                "Content-Length": str(len(body)),
                "ETag": self.etag.format(hashlib.md5(body).hexdigest()),
                "Content-Type": "application/json",
                "Last-Modified": "Sat, 21 Nov 2026 19:00:00 GMT",
            },
            b"",
        )


def google_container():
    driver = providers.PROVIDERS["google_storage"].open(
        {"STORAGE_KEY": "GOOG1EXAMPLEHMACACCESSID0123", "STORAGE_SECRET": "hmac-secret"}
    )
    return Container("claims", {}, driver)


def cloudfiles_container(mock):
    rackspace_identity(mock)
    return Container("claims", {}, providers.PROVIDERS["cloudfiles"].open(load_config(RACKSPACE_SETTINGS)))


# provider -> (container URL, the header that makes a PUT create-only, PUT's success status, ETag form)
MOCKED = {
    "google_storage": ("https://storage.googleapis.com/claims", ("x-goog-if-generation-match", "0"), 200, '"{}"'),
    "cloudfiles": (f"{RACKSPACE_STORAGE}/claims", ("If-None-Match", "*"), 201, "{}"),
}


def mocked_container(provider: str, mock):
    return google_container() if provider == "google_storage" else cloudfiles_container(mock)


@pytest.mark.parametrize("provider", MOCKED)
def test_sends_the_providers_condition_and_reads_its_refusal(provider, tmp_path):
    base, condition, created, etag = MOCKED[provider]
    store = ConditionalStore(base, condition, created, etag)
    (tmp_path / "claim").write_bytes(b"{}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        store.install(mock)
        container = mocked_container(provider, mock)
        assert upload_if_absent(container, "token.json", str(tmp_path / "claim")) is True
        assert upload_if_absent(container, "token.json", str(tmp_path / "claim")) is False
    assert [put.headers[condition[0]] for put in store.puts] == [condition[1]] * 2


@pytest.mark.parametrize("provider", MOCKED)
def test_a_refusal_for_an_object_that_is_not_there_is_an_error_not_a_claim(provider, tmp_path):
    base, _, created, _ = MOCKED[provider]
    (tmp_path / "claim").write_bytes(b"{}")
    with responses.RequestsMock() as mock:
        mock.add(responses.PUT, f"{base}/token.json", status=412)
        mock.add(responses.HEAD, base, status=204 if created == 201 else 200)
        mock.add(responses.HEAD, f"{base}/token.json", status=404)
        container = mocked_container(provider, mock)
        with pytest.raises(LibcloudError, match="412|etag"):
            upload_if_absent(container, "token.json", str(tmp_path / "claim"))
