"""Takedown: `inbox delete` on `inbox serve`'s local store and on a configured S3, take_down on the real S3, Azure
and Swift servers, and the cache lifetime (INBOX_CACHE_MAX_AGE) every served or stored copy carries."""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from inbox import create_app
from inbox.storage import current_store
from inbox.takedown import take_down
from tests.harness import INBOX, SIGNING_KEY, mailgun_form
from tests.processes import scrubbed_environ
from tests.test_providers import REAL, Real, s3_settings


def inbox(folder, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [INBOX, *args], cwd=folder, env=scrubbed_environ(**env), capture_output=True, text=True, timeout=60
    )


def sent_urls(folder, url, *paths) -> list[str]:
    result = inbox(folder, "send", "--url", f"{url}/webhooks/mailgun", *paths)
    assert result.returncode == 0, result.stderr
    return [item["url"] for item in json.loads(result.stdout)["stored"]]


def test_inbox_delete_takes_a_photo_down_in_the_serve_folder(served, images):
    folder, url = served
    (folder / "a.jpg").write_bytes(images[".jpg"])
    (folder / "b.png").write_bytes(images[".png"])
    gone, kept = sent_urls(folder, url, "a.jpg", "b.png")
    name = gone.rsplit("/", 1)[1]
    storage = folder / "var" / "storage"
    assert requests.get(gone, timeout=10).status_code == 200
    assert os.getxattr(storage / "images" / name, "user.inbox.meta")  # its type and headers, kept with it

    result = inbox(folder, "delete", gone)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"removed {gone}\n"
    assert "cached copy for up to 86400 s" in result.stderr
    assert requests.get(gone, timeout=10).status_code == 404
    assert not (storage / "images" / name).exists()
    assert not (storage / ".meta").exists()  # nothing beside the objects
    assert requests.get(kept, timeout=10).content == images[".png"]

    again = inbox(folder, "delete", gone, kept.rsplit("/", 1)[1])
    assert again.returncode == 1
    assert again.stdout.splitlines() == [
        f"not found: {gone} (no such image in local container images at {storage / 'images'})",
        f"removed {kept.rsplit('/', 1)[1]}",
    ]
    assert requests.get(kept, timeout=10).status_code == 404


def test_inbox_delete_refuses_names_the_service_does_not_make_and_touches_nothing(served, images):
    folder, url = served
    (folder / "c.webp").write_bytes(images[".webp"])
    (photo,) = sent_urls(folder, url, "c.webp")
    keep = folder / "keep.jpg"
    keep.write_bytes(b"not ours")
    storage = folder / "var" / "storage"
    before = sorted(path.relative_to(storage) for path in storage.rglob("*"))
    references = [
        "../../../keep.jpg",
        "../../etc/passwd",
        "photo.jpg",
        f"{url}/files/images/..%2F..%2F..%2Fkeep.jpg",
        photo.rsplit("/", 1)[1].upper(),
        photo.replace("/images/", "/images-receipts/") + ".json",
    ]

    result = inbox(folder, "delete", *references)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"not found: {reference} (not the name of an image this service publishes)" for reference in references
    ]
    assert keep.read_bytes() == b"not ours" and Path("/etc/passwd").exists()
    assert sorted(path.relative_to(storage) for path in storage.rglob("*")) == before
    assert requests.get(photo, timeout=10).status_code == 200


def test_inbox_delete_outside_a_serve_folder_without_settings_explains_and_makes_nothing(tmp_path):
    result = inbox(tmp_path, "delete", "0f6e3a62-5b1e-4c8e-9d0f-1a2b3c4d5e6f.jpg")
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in result.stderr and "inbox serve" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_inbox_delete_in_another_folder_says_there_is_no_store_and_makes_none(served, tmp_path, images):
    folder, url = served
    (folder / "a.jpg").write_bytes(images[".jpg"])
    (photo,) = sent_urls(folder, url, "a.jpg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = inbox(elsewhere, "delete", photo, MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY)

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"inbox: STORAGE_PATH='./var/storage': there is no store at {elsewhere / 'var' / 'storage'}; run this "
        "where the service runs (inbox serve keeps it in var/storage), or set its STORAGE_PATH\n"
    )
    assert list(elsewhere.iterdir()) == []
    assert requests.get(photo, timeout=10).status_code == 200


def test_inbox_delete_with_a_mistyped_container_names_it_and_creates_nothing(served, images):
    folder, url = served
    (folder / "a.jpg").write_bytes(images[".jpg"])
    (photo,) = sent_urls(folder, url, "a.jpg")
    storage = folder / "var" / "storage"
    before = sorted(path.relative_to(storage) for path in storage.rglob("*"))

    result = inbox(folder, "delete", photo, STORAGE_CONTAINER="imagez")

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"inbox: STORAGE_PROVIDER=local: there is no container 'imagez' in {storage}; check STORAGE_CONTAINER "
        "(and STORAGE_PATH), or run this with the service's settings\n"
    )
    assert sorted(path.relative_to(storage) for path in storage.rglob("*")) == before
    assert requests.get(photo, timeout=10).status_code == 200


@contextmanager
def undeletable(path: Path):
    """The file at `path` cannot be removed, as when `inbox delete` runs as a user who may not (root: immutable)."""
    if os.geteuid() == 0:  # root may remove any file from any folder, but not an immutable one
        subprocess.run(["chattr", "+i", path], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", path], check=True)
    else:
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(0o755)


def test_inbox_delete_that_cannot_remove_the_file_says_so_and_not_removed(settings, tmp_path, images):
    client = create_app(settings).test_client()
    url = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]))).get_json()["stored"][0]["url"]
    photo = Path(settings["STORAGE_PATH"]) / "images" / url.rsplit("/", 1)[1]

    with undeletable(photo):
        result = inbox(
            tmp_path, "delete", url, MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY, STORAGE_PATH=str(photo.parents[1])
        )

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"inbox: {url} was not taken down, the storage failed: local: PermissionError")
    assert str(photo) in result.stderr
    assert client.get(urlsplit(url).path).data == images[".jpg"]  # still there, and nobody was told otherwise


def test_inbox_delete_with_a_wrong_setting_is_a_one_line_configuration_error(tmp_path):
    result = inbox(tmp_path, "delete", "x.jpg", MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY, STORAGE_PROVIDER="dropbox")
    assert result.returncode == 2
    assert result.stderr.startswith("inbox: STORAGE_PROVIDER='dropbox' is not supported")
    assert len(result.stderr.splitlines()) == 1


def test_inbox_delete_reads_the_production_environment(moto_s3, tmp_path, images):
    """Configured like the service (STORAGE_* for S3, the signing key, no INBOX_PUBLISHERS): the bucket's object."""
    container = f"img-{tmp_path.name[-12:].lower().replace('_', '-')}"
    settings = {**s3_settings(moto_s3.port), "STORAGE_CONTAINER": container}
    app = create_app({**settings, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "INBOX_PUBLISHERS": "*"})
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
    url = response.get_json()["stored"][0]["url"]
    assert requests.get(url, timeout=10).status_code == 200

    result = inbox(tmp_path, "delete", url, MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY, **settings)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"removed {url}\n"
    assert requests.get(url, timeout=10).status_code in (403, 404)
    assert not (tmp_path / "var").exists()

    mistyped = inbox(
        tmp_path,
        "delete",
        url,
        MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY,
        **settings | {"STORAGE_CONTAINER": container + "x"},
    )
    assert mistyped.returncode == 2
    assert f"there is no container '{container}x'; check STORAGE_CONTAINER" in mistyped.stderr
    driver = current_store(app).images.driver
    assert container + "x" not in [bucket.name for bucket in driver.list_containers()]  # no new public bucket


@pytest.mark.parametrize("provider", list(REAL))
def test_take_down_on_a_real_server_removes_the_public_object(request, provider, images):
    real = Real(provider, request.getfixturevalue(REAL[provider][0]))
    app = real.app()
    response = app.test_client().post(
        "/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), ("b.png", images[".png"]))
    )
    by_url, by_name = [item["url"] for item in response.get_json()["stored"]]
    assert [requests.get(url, timeout=10).status_code for url in (by_url, by_name)] == [200, 200]
    store = current_store(app)

    outcome = take_down(store, [by_url, by_name.rsplit("/", 1)[1], "../etc/passwd"])

    assert outcome.removed == [by_url, by_name.rsplit("/", 1)[1]]
    assert (outcome.not_ours, outcome.absent) == (["../etc/passwd"], [])
    for url in (by_url, by_name):
        assert requests.get(url, timeout=10).status_code in (403, 404), url
    assert list(store.images.driver.iterate_container_objects(store.images)) == []
    again = take_down(store, [by_url])
    assert (again.removed, again.not_ours, again.absent) == ([], [], [by_url])


def test_local_files_carry_the_configured_cache_lifetime(settings, images):
    client = create_app({**settings, "INBOX_CACHE_MAX_AGE": "600"}).test_client()
    url = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]))).get_json()["stored"][0]["url"]
    assert client.get(urlsplit(url).path).headers["Cache-Control"] == "public, max-age=600, immutable"


def test_objects_stored_on_s3_carry_the_configured_cache_lifetime(moto_s3, images):
    app = Real("s3", moto_s3).app(INBOX_CACHE_MAX_AGE="600")
    url = (
        app.test_client()
        .post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
        .get_json()["stored"][0]["url"]
    )
    assert requests.get(url, timeout=10).headers["Cache-Control"] == "public, max-age=600, immutable"
