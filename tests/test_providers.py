"""Cloud storage end to end: the answered URLs open without credentials, receipts stay private,
a storage outage in the middle of a message is a 503 whose retry gives the same URLs.

S3 (moto), Azure Blob (Azurite) and OpenStack Swift run as real servers on 127.0.0.1
(tests/servers.py). Rackspace Cloud Files, Google Cloud Storage and the AWS-shaped S3 set-up
have no local server: their HTTP APIs are played by `responses`, and the tests check the
exact requests the app makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import tracemalloc
import uuid
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import requests
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from libcloud.storage.base import Container
from libcloud.storage.drivers.s3 import S3StorageDriver

from inbox import ConfigError, create_app, publish, receipts
from inbox.config import load_config
from inbox.delivery import signed_fields
from inbox.providers import PROVIDERS, swift_auth
from inbox.storage import content_disposition, current_store, store_image
from tests.harness import SIGNING_KEY, mailgun_form, make_image
from tests.processes import free_port
from tests.servers import AZURITE_ACCOUNT, AZURITE_KEY, SWIFT_KEY, SWIFT_USER

# The default INBOX_CACHE_MAX_AGE: a takedown reaches caches within a day.
CACHE_CONTROL = "public, max-age=86400, immutable"
SIGNING = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "INBOX_PUBLISHERS": "*"}


def s3_settings(port: int) -> dict:
    return {
        "STORAGE_PROVIDER": "s3",
        "STORAGE_KEY": "test-key",
        "STORAGE_SECRET": "test-secret",
        "STORAGE_HOST": "127.0.0.1",
        "STORAGE_PORT": str(port),
        "STORAGE_SECURE": "false",
    }


def azure_settings(port: int, secret: str = AZURITE_KEY) -> dict:
    return {
        "STORAGE_PROVIDER": "azure_blobs",
        "STORAGE_KEY": AZURITE_ACCOUNT,
        "STORAGE_SECRET": secret,
        "STORAGE_HOST": "127.0.0.1",
        "STORAGE_PORT": str(port),
        "STORAGE_SECURE": "false",
    }


def swift_settings(port: int, password: str = SWIFT_KEY) -> dict:
    return {
        "STORAGE_PROVIDER": "openstack_swift",
        "STORAGE_KEY": SWIFT_USER,
        "STORAGE_SECRET": password,
        "STORAGE_AUTH_URL": f"http://127.0.0.1:{port}/auth/v1.0",
    }


# provider -> (server fixture, settings for a port, public URL prefix of a container on that port)
REAL = {
    "s3": ("moto_s3", s3_settings, "http://127.0.0.1:{port}/{container}/"),
    "azure_blobs": ("azurite", azure_settings, "http://127.0.0.1:{port}/" + AZURITE_ACCOUNT + "/{container}/"),
    "openstack_swift": ("swift", swift_settings, "http://127.0.0.1:{port}/v1/AUTH_test/{container}/"),
}


class Real:
    """One real server, and apps made against it (directly or through a TcpLink)."""

    def __init__(self, provider: str, server):
        self.provider, self.server = provider, server
        _, self.settings_for, self.prefix = REAL[provider]

    def app(self, port: int | None = None, container: str | None = None, **extra):
        container = container or f"img-{uuid.uuid4().hex[:12]}"
        settings = {**SIGNING, **self.settings_for(port or self.server.port), "STORAGE_CONTAINER": container, **extra}
        return create_app(settings)

    def url_prefix(self, app, port: int | None = None) -> str:
        return self.prefix.format(port=port or self.server.port, container=app.config["STORAGE_CONTAINER"])


@pytest.fixture(params=list(REAL))
def real(request):
    return Real(request.param, request.getfixturevalue(REAL[request.param][0]))


def stored_names(app) -> set[str]:
    images = current_store(app).images
    return {obj.name for obj in images.driver.list_container_objects(images)}


def test_answered_urls_open_anonymously_with_type_name_and_caching(real, images):
    app = real.app()
    large = make_image(".bmp", size=(1400, 1400))  # 5.9 MB: past libcloud's Azure block size
    attachments = [
        ("Strand über Mittag.jpg", images[".jpg"]),
        ("b.png", images[".png"]),
        ("c.heic", images[".heic"]),
        ("scan.bmp", large),
        ("notes.txt", b"not an image"),
    ]
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(*attachments))

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [item["filename"] for item in body["rejected"]] == ["notes.txt"]
    assert len(body["stored"]) == 4
    for item, (_, content) in zip(body["stored"], attachments[:4], strict=True):
        assert item["url"].startswith(real.url_prefix(app))
        fetched = requests.get(item["url"], timeout=10)  # no credentials of any kind
        assert fetched.status_code == 200, item["url"]
        assert fetched.content == content
        assert fetched.headers["Content-Type"] == item["content_type"]
        assert fetched.headers["Content-Disposition"] == content_disposition(item["filename"])
        assert fetched.headers["Cache-Control"] == CACHE_CONTROL
    assert body["stored"][0]["filename"] == "Strand über Mittag.jpg"
    assert body["stored"][0]["content_type"] == "image/jpeg"


def test_a_long_non_ascii_file_name_is_stored_and_served_on_every_provider(real, images):
    """A phone's Japanese file name, as long as any the app keeps: Swift takes 256 bytes of metadata per value."""
    app = real.app()
    filename = ("北海道の家族旅行で撮った写真" * 18)[:251] + ".jpg"  # clean_filename keeps 255 characters
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form((filename, images[".jpg"])))

    assert response.status_code == 200, response.get_json()
    (stored,) = response.get_json()["stored"]
    assert stored["filename"] == filename
    fetched = requests.get(stored["url"], timeout=10)
    assert fetched.content == images[".jpg"]
    assert fetched.headers["Content-Disposition"] == content_disposition(filename)


def test_receipts_and_listings_are_not_public(real, images):
    """Objects are readable by name only: never a receipt, never a listing (moto does not guard listings)."""
    app = real.app()
    fields = signed_fields(SIGNING_KEY)
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), **fields))
    assert response.status_code == 200
    assert requests.get(response.get_json()["stored"][0]["url"], timeout=10).status_code == 200

    images_prefix = real.url_prefix(app)
    receipts_prefix = images_prefix.replace(app.config["STORAGE_CONTAINER"], app.config["STORAGE_RECEIPTS_CONTAINER"])
    receipt = "token-" + hashlib.sha256(fields["token"].encode()).hexdigest() + ".json"
    assert current_store(app).receipts.driver.get_object(app.config["STORAGE_RECEIPTS_CONTAINER"], receipt)
    listings = {"s3": None, "azure_blobs": "?restype=container&comp=list", "openstack_swift": "?format=json"}
    listing = listings[real.provider]
    listings = [prefix.rstrip("/") + listing for prefix in (receipts_prefix, images_prefix)] if listing else []
    for url in [receipts_prefix + receipt, *listings]:
        anonymous = requests.get(url, timeout=10)
        assert anonymous.status_code in (401, 403, 404), url
        assert fields["token"] not in anonymous.text and "stored" not in anonymous.text


def test_without_the_public_step_the_servers_refuse_anonymous_reads(real, images):
    """What makes the answered URLs open is the app's own public-access step: each server enforces it."""
    app = real.app(STORAGE_MAKE_PUBLIC="false")
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
    assert response.status_code == 200
    assert requests.get(response.get_json()["stored"][0]["url"], timeout=10).status_code in (401, 403, 404)


def test_s3_bucket_policy_lets_anyone_get_objects_and_keeps_other_statements(moto_s3):
    driver = S3StorageDriver("k", "s", host="127.0.0.1", port=moto_s3.port, secure=False)
    bucket = f"img-{uuid.uuid4().hex[:12]}"
    driver.create_container(bucket)
    no_deletes = {
        "Sid": "NoDeletes",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    put = driver.connection.request(
        f"/{bucket}",
        params={"policy": ""},
        method="PUT",
        raw=True,
        data=json.dumps({"Version": "2012-10-17", "Statement": [no_deletes]}),
    )
    assert put.status in (200, 204)

    def policy(name):
        answer = driver.connection.request(f"/{name}", params={"policy": ""}, raw=True)
        return json.loads(answer.body)["Statement"] if answer.status == 200 else None

    settings = {**SIGNING, **s3_settings(moto_s3.port), "STORAGE_CONTAINER": bucket}
    create_app(settings)
    create_app(settings)  # a second start (another worker) adds nothing
    public_read = {
        "Sid": "InboxPublicReadObjects",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    assert policy(bucket) == [no_deletes, public_read]
    assert policy(f"{bucket}-receipts") is None


def test_outage_mid_message_is_503_and_the_retry_gives_the_same_urls(real, tcp_link, monkeypatch, images):
    link = tcp_link(real.server.port)
    app = real.app(port=link.port)
    client = app.test_client()
    real_store = publish.store_image

    def store_then_lose_storage(*args):
        obj = real_store(*args)
        link.cut()  # the first image is stored, then the network to the storage goes down
        return obj

    monkeypatch.setattr(publish, "store_image", store_then_lose_storage)
    fields = signed_fields(SIGNING_KEY)
    attachments = (("a.jpg", images[".jpg"]), ("b.png", images[".png"]))
    failed = client.post("/webhooks/mailgun", data=mailgun_form(*attachments, **fields))

    assert failed.status_code == 503
    assert "stored" not in failed.get_json() and "Mailgun will retry" in failed.get_json()["reason"]
    unhealthy = client.get("/healthz")
    assert unhealthy.status_code == 503 and unhealthy.get_json()["status"] == "unavailable"

    monkeypatch.setattr(publish, "store_image", real_store)
    link.restore()
    # The failed attempt could not release its claim (storage was gone). Mailgun retries after
    # 10 minutes; by then the claim is abandoned and the retry takes it over.
    monkeypatch.setattr(receipts, "ABANDONED_AFTER", 0)
    assert client.get("/healthz").status_code == 200
    written_before_retry = stored_names(app)
    assert len(written_before_retry) == 1

    retry = client.post("/webhooks/mailgun", data=mailgun_form(*attachments, **fields))  # same token: a retry
    assert retry.status_code == 200
    urls = [item["url"] for item in retry.get_json()["stored"]]
    assert urls[0].rsplit("/", 1)[1] in written_before_retry  # the half-done attempt's object, not a copy
    assert stored_names(app) == {url.rsplit("/", 1)[1] for url in urls}
    for url, (_, content) in zip(urls, attachments, strict=True):
        assert url.startswith(real.url_prefix(app, port=link.port))
        assert requests.get(url, timeout=10).content == content
    again = client.post("/webhooks/mailgun", data=mailgun_form(*attachments, **fields))
    assert again.status_code == 200 and again.get_json() == retry.get_json()


def test_start_up_against_a_closed_port_names_provider_and_endpoint(real):
    with pytest.raises(ConfigError) as error:
        real.app(port=free_port())
    message = str(error.value)
    assert f"STORAGE_PROVIDER={real.provider}" in message
    assert "cannot be reached" in message and "STORAGE_PORT" in message


@pytest.mark.parametrize(
    "provider, wrong", [("azure_blobs", {"secret": "d3Jvbmcga2V5"}), ("openstack_swift", {"password": "wrong"})]
)
def test_start_up_with_wrong_credentials_says_so(provider, wrong, request):
    server = request.getfixturevalue(REAL[provider][0])
    settings = {**SIGNING, **REAL[provider][1](server.port, **wrong), "STORAGE_CONTAINER": "photos"}
    with pytest.raises(ConfigError) as error:
        create_app(settings)
    message = str(error.value)
    assert f"STORAGE_PROVIDER={provider}" in message and "credentials were refused" in message
    assert "STORAGE_KEY" in message and "STORAGE_SECRET" in message
    if provider == "azure_blobs":
        assert "'photos'" in message


@pytest.mark.parametrize("folder", ["family photos", "fotos+2026", "フォト", "50%?#"])
def test_a_local_folder_name_that_served_before_the_container_name_rule_still_serves(tmp_path, images, folder):
    # The local store's URLs quote the folder's name: such a name published and served its photos, and
    # start-up refused it after the rule for the cloud's names came, so an upgrade lost every link sent.
    app = create_app({**SIGNING, "STORAGE_PATH": str(tmp_path), "INBOX_PUBLISHERS": "*", "STORAGE_CONTAINER": folder})
    client = app.test_client()
    answer = client.post("/webhooks/mailgun", data=mailgun_form(("a.png", images[".png"])))
    assert answer.status_code == 200, answer.get_json()
    url = answer.get_json()["stored"][0]["url"]
    assert client.get(url).data == images[".png"]
    assert (tmp_path / folder).is_dir() and (tmp_path / f"{folder}-receipts").is_dir()


@pytest.mark.parametrize("setting", ["STORAGE_CONTAINER", "STORAGE_RECEIPTS_CONTAINER"])
@pytest.mark.parametrize("suffix", ["?x=1", "#1", "%2Fx", " photos"])
def test_a_container_name_a_url_would_cut_is_refused_at_start_up(moto_s3, setting, suffix):
    """S3 took "photos?x=1" as bucket photos with a query: start-up passed, every delivery was a 503."""
    bucket = f"img-{uuid.uuid4().hex[:12]}"
    settings = {**SIGNING, **s3_settings(moto_s3.port), "STORAGE_CONTAINER": bucket, setting: bucket + suffix}
    with pytest.raises(ConfigError, match=f"^{setting}=.* is not a container name: use letters, digits"):
        create_app(settings)
    driver = S3StorageDriver("k", "s", host="127.0.0.1", port=moto_s3.port, secure=False)
    assert not [container for container in driver.list_containers() if container.name.startswith(bucket)]


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        ("STORAGE_CONTAINER", "Images_Big"),
        ("STORAGE_CONTAINER", "ab"),
        ("STORAGE_CONTAINER", "photos--2024"),
        ("STORAGE_CONTAINER", "photos.2024"),
        ("STORAGE_RECEIPTS_CONTAINER", "Receipts"),
    ],
)
def test_a_container_name_azure_refuses_is_named_at_start_up_before_anything_is_made(azurite, setting, name):
    # Azure answers any other name with a bare 400: start-up said "Unexpected status code: 400 …
    # check the STORAGE_* settings", after making the image container when only the receipts' was wrong.
    prefix = f"img-{uuid.uuid4().hex[:12]}"
    settings = {**SIGNING, **azure_settings(azurite.port), "STORAGE_CONTAINER": prefix, setting: name}
    with pytest.raises(ConfigError) as raised:
        create_app(settings)

    assert str(raised.value) == (
        f"{setting}={name!r} is not a container name azure_blobs accepts: use 3 to 63 lowercase letters, "
        "digits and single hyphens, starting and ending with a letter or digit"
    )
    driver = PROVIDERS["azure_blobs"].open(load_config({**SIGNING, **azure_settings(azurite.port)}))
    assert not [container for container in driver.list_containers() if container.name.startswith(prefix)]


def test_uploads_stream_from_the_spooled_file(real, tmp_path):
    """Memory stays flat: one PUT streamed from the file, even past libcloud's 4 MiB Azure block size."""
    app = real.app()
    path = tmp_path / "big.bmp"
    path.write_bytes(make_image(".bmp", size=(2900, 2900)))
    assert path.stat().st_size > 24 * 1024 * 1024
    store = current_store(app)
    images = store.images
    tracemalloc.start()
    try:
        store_image(store, str(path), "big.bmp", "image/bmp", "big.bmp")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, peak
    assert images.driver.get_object(images.name, "big.bmp").size == path.stat().st_size


# --- Providers without a local server: their HTTP API played by `responses`. ---------------


def _body(request) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, (bytes, str)):
        return body.encode() if isinstance(body, str) else body
    return body.read() if hasattr(body, "read") else b"".join(body)  # an upload streamed from a file


class FakeObjectStore:
    """Containers and objects behind a base URL, answering HEAD, GET, PUT and DELETE as Swift and S3 do."""

    def __init__(self, base: str, created: int):
        self.base, self.created = base, created
        self.containers: dict[str, dict[str, tuple[bytes, dict]]] = {}  # name -> object name -> (bytes, headers)

    def install(self, mock) -> None:
        for method in ("HEAD", "GET", "PUT"):  # GET: the name key, read at start-up
            mock.add_callback(method, re.compile(re.escape(self.base) + r"/[^?]+(\?.*)?$"), callback=self.answer)

    def answer(self, request):
        container, _, name = urlsplit(request.url).path[len(urlsplit(self.base).path) + 1 :].partition("/")
        objects = self.containers.get(container)
        if not name:
            if request.method == "PUT":
                self.containers.setdefault(container, {})
                return self.created, {}, b""
            return (204, {}, b"") if objects is not None else (404, {}, b"")
        if request.method == "PUT":
            content = _body(request)
            objects[name] = (content, dict(request.headers))
            return self.created, {"ETag": hashlib.md5(content).hexdigest()}, b""
        if objects is None or name not in objects:
            return 404, {}, b""
        if request.method == "DELETE":
            del objects[name]
            return 204, {}, b""
        content, headers = objects[name]
        return (
            200,
            {
                "Content-Type": headers["Content-Type"],
                "Content-Length": str(len(content)),
                "ETag": hashlib.md5(content).hexdigest(),
            },
            content if request.method == "GET" else b"",
        )


RACKSPACE_STORAGE = "https://storage101.ord1.clouddrive.com/v1/MossoCloudFS_1234"
RACKSPACE_CDN = "https://cdn1.clouddrive.com/v1/MossoCloudFS_1234"
RACKSPACE_CDN_SSL = "https://f0a1b2c3d4e5f6a7b8c9-0123456789abcdef.ssl.cf1.rackcdn.com"


def rackspace_identity(mock) -> None:
    endpoint = {"region": "ORD", "tenantId": "MossoCloudFS_1234"}
    catalog = [
        {"name": "cloudFiles", "type": "object-store", "endpoints": [{**endpoint, "publicURL": RACKSPACE_STORAGE}]},
        {"name": "cloudFilesCDN", "type": "rax:object-cdn", "endpoints": [{**endpoint, "publicURL": RACKSPACE_CDN}]},
    ]
    mock.add(
        responses.POST,
        "https://identity.api.rackspacecloud.com/v2.0/tokens",
        json={
            "access": {
                "token": {"id": "rax-token", "expires": "2099-01-01T00:00:00Z", "tenant": {"id": "1234"}},
                "serviceCatalog": catalog,
                "user": {"id": "1", "name": "photos"},
            }
        },
    )


def rackspace_cdn(mock) -> None:
    mock.add(responses.PUT, f"{RACKSPACE_CDN}/images", status=201)
    mock.add(
        responses.HEAD,
        f"{RACKSPACE_CDN}/images",
        status=204,
        headers={
            "X-Cdn-Enabled": "True",
            "X-Cdn-Uri": "http://f0a1.r9.cf1.rackcdn.com",
            "X-Cdn-Ssl-Uri": RACKSPACE_CDN_SSL,
        },
    )


RACKSPACE_SETTINGS = {
    **SIGNING,
    "STORAGE_PROVIDER": "cloudfiles",
    "STORAGE_KEY": "photos",
    "STORAGE_SECRET": "rackspace-api-key",
    "STORAGE_REGION": "ord",
}


def test_rackspace_cloud_files_answers_its_ssl_cdn_urls(images):
    store = FakeObjectStore(RACKSPACE_STORAGE, created=201)
    with responses.RequestsMock() as mock:
        rackspace_identity(mock)
        rackspace_cdn(mock)
        store.install(mock)
        app = create_app(RACKSPACE_SETTINGS)
        response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("Straße.jpg", images[".jpg"])))
        calls = [(call.request.method, call.request.url.split("?")[0]) for call in mock.calls]
        sign_in = json.loads(mock.calls[0].request.body)
        cdn_enable = next(
            call.request
            for call in mock.calls
            if call.request.url.startswith(f"{RACKSPACE_CDN}/images") and call.request.method == "PUT"
        )

    assert response.status_code == 200, response.get_json()
    item = response.get_json()["stored"][0]
    name = item["url"].rsplit("/", 1)[1]
    assert item["url"] == f"{RACKSPACE_CDN_SSL}/{name}"
    assert sign_in == {"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "photos", "apiKey": "rackspace-api-key"}}}
    assert cdn_enable.headers["X-CDN-Enabled"] == "True" and cdn_enable.headers["X-Auth-Token"] == "rax-token"
    assert ("PUT", f"{RACKSPACE_CDN}/images-receipts") not in calls  # the receipts stay off the CDN
    assert ("PUT", f"{RACKSPACE_STORAGE}/images/{name}") in calls
    content, headers = store.containers["images"][name]
    assert content == images[".jpg"]
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"] == content_disposition("Straße.jpg")
    assert headers["Cache-Control"] == CACHE_CONTROL
    assert list(store.containers["images-receipts"]) and not set(store.containers["images-receipts"]) & {name}


def test_rackspace_errors_without_a_libcloud_class_are_a_503(images):
    """Cloud Files/Swift pass HTTP errors on as BaseHTTPError, which is not a LibcloudError."""
    store = FakeObjectStore(RACKSPACE_STORAGE, created=201)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        rackspace_identity(mock)
        rackspace_cdn(mock)
        store.install(mock)
        mock.add_callback("DELETE", re.compile(re.escape(RACKSPACE_STORAGE) + r"/[^?]+(\?.*)?$"), callback=store.answer)
        app = create_app(RACKSPACE_SETTINGS)
        for method in (responses.HEAD, responses.PUT):
            mock.replace(method, re.compile(re.escape(RACKSPACE_STORAGE) + r"/[^?]+(\?.*)?$"), status=503)
        delivery = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
        health = app.test_client().get("/healthz")

    assert delivery.status_code == 503 and "stored" not in delivery.get_json()
    assert health.status_code == 503 and "cloudfiles storage" in health.get_json()["reason"]
    assert " object at 0x" not in health.get_json()["reason"]  # the driver's repr is for the log


KEYSTONE = "https://auth.cloud.example.com"
SWIFT_GRA = "https://storage.gra.cloud.example.com/v1/AUTH_0123abcd"


def keystone_v3(mock) -> None:
    catalog = [
        {
            "type": "object-store",
            "name": "swift",
            "endpoints": [
                {"interface": "public", "region": "GRA", "url": SWIFT_GRA},
                {"interface": "internal", "region": "GRA", "url": "http://10.0.0.5:8080/v1/AUTH_0123abcd"},
                {
                    "interface": "public",
                    "region": "SBG",
                    "url": "https://storage.sbg.cloud.example.com/v1/AUTH_0123abcd",
                },
            ],
        }
    ]
    mock.add(
        responses.POST,
        f"{KEYSTONE}/v3/auth/tokens",
        status=201,
        headers={"X-Subject-Token": "keystone-token"},
        json={"token": {"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": catalog, "user": {"id": "u1"}}},
    )


KEYSTONE_SETTINGS = {
    **SIGNING,
    "STORAGE_PROVIDER": "openstack_swift",
    "STORAGE_KEY": "photos",
    "STORAGE_SECRET": "pw",
    "STORAGE_AUTH_URL": f"{KEYSTONE}/v3",
    "STORAGE_TENANT": "photos-project",
}


def test_swift_with_keystone_v3_uses_the_catalog_url_of_the_region(images):
    store = FakeObjectStore(SWIFT_GRA, created=201)
    with responses.RequestsMock() as mock:
        keystone_v3(mock)
        mock.add(responses.POST, re.compile(re.escape(f"{SWIFT_GRA}/images") + r"(\?.*)?$"), status=204)
        store.install(mock)
        app = create_app({**KEYSTONE_SETTINGS, "STORAGE_REGION": "GRA"})
        response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
        auth = json.loads(mock.calls[0].request.body)["auth"]
        acl = next(
            call.request for call in mock.calls if call.request.method == "POST" and SWIFT_GRA in call.request.url
        )

    assert auth["scope"]["project"]["name"] == "photos-project"
    assert auth["identity"]["password"]["user"]["name"] == "photos"
    assert acl.headers["X-Container-Read"] == ".r:*" and acl.headers["X-Auth-Token"] == "keystone-token"
    assert acl.url.split("?")[0] == f"{SWIFT_GRA}/images"
    name = response.get_json()["stored"][0]["url"].rsplit("/", 1)[1]
    assert response.get_json()["stored"][0]["url"] == f"{SWIFT_GRA}/images/{name}"
    _, headers = store.containers["images"][name]
    assert headers["Content-Disposition"] == content_disposition("a.jpg") and headers["Cache-Control"] == CACHE_CONTROL


def test_swift_catalog_with_several_regions_asks_for_storage_region():
    with responses.RequestsMock() as mock:
        keystone_v3(mock)
        with pytest.raises(ConfigError, match="STORAGE_REGION"):
            create_app(KEYSTONE_SETTINGS)


GCS = "https://storage.googleapis.com"
GCS_OWNER_ACL = (
    "<AccessControlList><Owner><ID>00b4903a9</ID></Owner><Entries>"
    "<Entry><Scope type='GroupById'><ID>00b4903a9</ID></Scope><Permission>FULL_CONTROL</Permission></Entry>"
    "</Entries></AccessControlList>"
)


def gcs_hmac_signature(request, secret: str) -> str:
    """GCS's XML API HMAC signature, from its documentation: a sub-resource is part of the signed resource."""
    headers = {key.lower(): value for key, value in request.headers.items()}
    goog = "".join(f"{key}:{headers[key].strip()}\n" for key in sorted(headers) if key.startswith("x-goog-"))
    url = urlsplit(request.url)
    resource = url.path + (f"?{url.query}" if url.query == "defaultObjectAcl" else "")
    signed = (
        f"{request.method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{headers['date']}\n{goog}{resource}"
    )
    return base64.b64encode(hmac.new(secret.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def gcs_bucket(mock) -> FakeObjectStore:
    mock.add(responses.GET, f"{GCS}/photos?defaultObjectAcl", body=GCS_OWNER_ACL, content_type="application/xml")
    mock.add(responses.PUT, f"{GCS}/photos?defaultObjectAcl", body="")
    store = FakeObjectStore(GCS, created=200)
    store.install(mock)
    return store


GCS_SETTINGS = {
    **SIGNING,
    "STORAGE_PROVIDER": "google_storage",
    "STORAGE_PROJECT": "photos-project",
    "STORAGE_CONTAINER": "photos",
}


def test_google_cloud_storage_default_object_acl_and_urls(images):
    settings = {**GCS_SETTINGS, "STORAGE_KEY": "GOOG1EXAMPLEHMACACCESSID0123", "STORAGE_SECRET": "hmac-secret"}
    with responses.RequestsMock() as mock:
        store = gcs_bucket(mock)
        app = create_app(settings)
        response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.png", images[".png"])))
        acl_put = next(
            call.request
            for call in mock.calls
            if "defaultObjectAcl" in call.request.url and call.request.method == "PUT"
        )
        every_request = [call.request for call in mock.calls]
        bucket_puts = [
            request
            for request in every_request
            if request.method == "PUT" and urlsplit(request.url).path in ("/photos", "/photos-receipts")
        ]

    assert response.status_code == 200, response.get_json()
    item = response.get_json()["stored"][0]
    name = item["url"].rsplit("/", 1)[1]
    assert item["url"] == f"{GCS}/photos/{name}"
    entries = ElementTree.fromstring(_body(acl_put)).find("Entries")
    assert [(entry.find("Scope").get("type"), entry.findtext("Permission")) for entry in entries] == [
        ("GroupById", "FULL_CONTROL"),
        ("AllUsers", "READ"),
    ]
    assert all(request.headers["x-goog-project-id"] == "photos-project" for request in bucket_puts)
    for request in every_request:
        signature = gcs_hmac_signature(request, "hmac-secret")
        assert request.headers["Authorization"] == f"GOOG1 GOOG1EXAMPLEHMACACCESSID0123:{signature}", request.url
    content, headers = store.containers["photos"][name]
    assert content == images[".png"] and headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == content_disposition("a.png")
    assert headers["Cache-Control"] == CACHE_CONTROL
    assert "defaultObjectAcl" not in "".join(call.request.url for call in mock.calls if "receipts" in call.request.url)


@pytest.mark.parametrize("key_format", ["json", "pem"])
def test_google_service_account_key_file_signs_in_with_oauth(tmp_path, monkeypatch, images, key_format):
    # libcloud takes a JSON key file or a file of the PEM private key alone (an older deployment's).
    monkeypatch.setenv("HOME", str(tmp_path))  # libcloud caches the token in ~/.google_libcloud_auth.<account>
    account = "inbox@photos-project.iam.gserviceaccount.com"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / f"service-account.{key_format}"
    if key_format == "json":
        key_file.write_text(json.dumps({"type": "service_account", "client_email": account, "private_key": pem}))
    else:
        key_file.write_text(pem)
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            "https://accounts.google.com/o/oauth2/token",
            json={"access_token": "sa-token", "expires_in": 3600, "token_type": "Bearer"},
        )
        gcs_bucket(mock)
        app = create_app({**GCS_SETTINGS, "STORAGE_KEY": account, "STORAGE_SECRET": str(key_file)})
        response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.png", images[".png"])))
        token_request = mock.calls[0].request
        storage_requests = [call.request for call in mock.calls if call.request.url.startswith(GCS)]

    assert response.status_code == 200
    assert response.get_json()["stored"][0]["url"].startswith(f"{GCS}/photos/")
    assert storage_requests and all(r.headers["Authorization"] == "Bearer sa-token" for r in storage_requests)
    header, claims, signature = parse_qs(token_request.body)["assertion"][0].split(".")
    key.public_key().verify(
        base64.urlsafe_b64decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert json.loads(base64.urlsafe_b64decode(claims))["iss"] == account


@pytest.mark.parametrize(
    ("key_file", "problem"),
    [
        ("missing.json", "does not exist"),
        (".", "cannot be read (is a directory)"),
        ("key.p12", "is neither JSON nor a PEM private key"),
        ("wrong-field.json", "has no private_key"),
    ],
)
def test_a_service_account_key_file_that_is_not_there_says_so_at_start_up(tmp_path, monkeypatch, key_file, problem):
    # libcloud takes a path it cannot open for the key itself: start-up said "Unable to decode
    # provided PEM key … MalformedFraming", and for a JSON file without private_key it quoted the file.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "key.p12").write_bytes(b"\x30\x82\x0a\x00 not a JSON key")
    (tmp_path / "wrong-field.json").write_text(json.dumps({"privatekey": "-----BEGIN PRIVATE KEY-----\nMIIEv"}))
    settings = {
        **GCS_SETTINGS,
        "STORAGE_KEY": "inbox@photos-project.iam.gserviceaccount.com",
        "STORAGE_SECRET": str(tmp_path / key_file),
    }
    with responses.RequestsMock(), pytest.raises(ConfigError) as raised:  # nothing may be sent
        create_app(settings)

    assert str(raised.value) == (
        f"STORAGE_SECRET: the key file it names {problem}; set STORAGE_SECRET to the path of the service "
        "account's JSON key file (IAM, Service accounts, Keys)"
    )


def test_aws_region_creates_the_bucket_there_and_answers_virtual_hosted_urls(images):
    host = "https://s3-eu-west-1.amazonaws.com"
    store = FakeObjectStore(host, created=200)
    settings = {
        **SIGNING,
        "STORAGE_PROVIDER": "s3",
        "STORAGE_KEY": "AKIAEXAMPLE",
        "STORAGE_SECRET": "secret",
        "STORAGE_REGION": "eu-west-1",
    }
    with responses.RequestsMock() as mock:
        policy_url = re.compile(re.escape(f"{host}/images?policy=") + ".*")
        mock.add(responses.GET, policy_url, status=404, body="<Error><Code>NoSuchBucketPolicy</Code></Error>")
        mock.add(responses.PUT, policy_url, status=204)
        store.install(mock)
        app = create_app(settings)
        response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
        requests_made = [call.request for call in mock.calls]

    assert response.status_code == 200, response.get_json()
    name = response.get_json()["stored"][0]["url"].rsplit("/", 1)[1]
    assert response.get_json()["stored"][0]["url"] == f"https://images.s3-eu-west-1.amazonaws.com/{name}"
    create = next(r for r in requests_made if r.method == "PUT" and urlsplit(r.url).path == "/images")
    assert b"<LocationConstraint>eu-west-1</LocationConstraint>" in _body(create)
    policy = next(
        r
        for r in requests_made
        if r.method == "PUT" and "policy" in parse_qs(urlsplit(r.url).query, keep_blank_values=True)
    )
    assert json.loads(_body(policy))["Statement"] == [
        {
            "Sid": "InboxPublicReadObjects",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::images/*",
        }
    ]
    assert all("/eu-west-1/s3/aws4_request" in r.headers["Authorization"] for r in requests_made)
    _, headers = store.containers["images"][name]
    assert "x-amz-acl" not in {key.lower() for key in headers}  # ACLs are off on new AWS buckets
    assert headers["Content-Disposition"] == content_disposition("a.jpg") and headers["Cache-Control"] == CACHE_CONTROL


def test_s3_compatible_service_signs_with_its_own_region():
    settings = load_config(
        {**SIGNING, **s3_settings(3900), "STORAGE_HOST": "garage.internal", "STORAGE_REGION": "garage"}
    )
    driver = PROVIDERS["s3"].open(settings)
    with responses.RequestsMock() as mock:
        mock.add(responses.HEAD, "http://garage.internal:3900/images", status=200)
        driver.get_container("images")
        authorization = mock.calls[0].request.headers["Authorization"]
    assert "/garage/s3/aws4_request" in authorization
    assert (
        PROVIDERS["s3"].url_base(driver, Container("images", None, driver), settings)
        == "http://garage.internal:3900/images"
    )


@pytest.mark.parametrize(
    "settings, variable",
    [
        ({"STORAGE_PROVIDER": "s3", "STORAGE_KEY": "k"}, "STORAGE_SECRET"),
        ({"STORAGE_PROVIDER": "minio", "STORAGE_KEY": "k", "STORAGE_SECRET": "s"}, "STORAGE_HOST"),
        ({"STORAGE_PROVIDER": "openstack_swift", "STORAGE_KEY": "u", "STORAGE_SECRET": "p"}, "STORAGE_AUTH_URL"),
        (
            {
                "STORAGE_PROVIDER": "openstack_swift",
                "STORAGE_KEY": "u",
                "STORAGE_SECRET": "p",
                "STORAGE_AUTH_URL": "https://keystone.example.com:5000/v3",
            },
            "STORAGE_TENANT",
        ),
        (
            {
                "STORAGE_PROVIDER": "openstack_swift",
                "STORAGE_KEY": "u",
                "STORAGE_SECRET": "p",
                "STORAGE_AUTH_URL": "https://keystone.example.com",
                "STORAGE_AUTH_VERSION": "4",
            },
            "STORAGE_AUTH_VERSION",
        ),
        (
            {"STORAGE_PROVIDER": "s3", "STORAGE_KEY": "k", "STORAGE_SECRET": "s", "STORAGE_REGION": "mars-1"},
            "STORAGE_REGION",
        ),
        ({"STORAGE_PROVIDER": "azure_blobs", "STORAGE_KEY": "acct", "STORAGE_SECRET": "not base64!"}, "STORAGE_SECRET"),
        ({"STORAGE_PROVIDER": "dropbox"}, "STORAGE_PROVIDER"),
        (
            {"STORAGE_PROVIDER": "s3", "STORAGE_KEY": "k", "STORAGE_SECRET": "s", "STORAGE_MAKE_PUBLIC": "maybe"},
            "STORAGE_MAKE_PUBLIC",
        ),
    ],
)
def test_provider_settings_are_checked_at_start_up(settings, variable):
    with pytest.raises(ConfigError, match=variable):
        create_app({**SIGNING, **settings})


def test_swift_auth_url_version_suffix_picks_the_auth_version():
    base = {**SIGNING, "STORAGE_PROVIDER": "openstack_swift", "STORAGE_KEY": "u", "STORAGE_SECRET": "p"}
    v1 = load_config({**base, "STORAGE_AUTH_URL": "http://swift.internal:8080/auth/v1.0"})
    assert swift_auth(v1) == ("http://swift.internal:8080/auth", "1.0")
    v3 = load_config({**base, "STORAGE_AUTH_URL": "https://keystone.example.com:5000/v3/", "STORAGE_TENANT": "photos"})
    assert swift_auth(v3) == ("https://keystone.example.com:5000", "3.x_password")


def test_public_base_url_overrides_the_provider_url(moto_s3, images):
    app = Real("s3", moto_s3).app(PUBLIC_BASE_URL="https://cdn.example.com/photos/")
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
    assert response.get_json()["stored"][0]["url"].startswith("https://cdn.example.com/photos/")
