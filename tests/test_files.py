"""The local store's public files: served as the image they were accepted as, and nothing else."""

import os

import pytest

from tests.harness import make_image


@pytest.fixture
def stored(deliver):
    """Deliver one JPEG with a hostile Unicode name; return its answer entry."""
    name = "../../Ünïcødé \u202egpj.exe\x07 photo 📷.jpg"
    return deliver((name, make_image(".jpg"))).get_json()["stored"][0]


def test_served_with_type_nosniff_sandbox_disposition_and_long_cache(client, stored):
    response = client.get(stored["url"])

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "public, max-age=86400, immutable"  # INBOX_CACHE_MAX_AGE: a day
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=")
    assert "filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20gpj.exe%20photo%20%F0%9F%93%B7.jpg" in disposition
    assert stored["filename"] == "Ünïcødé gpj.exe photo 📷.jpg"


def test_conditional_get_and_head(client, stored):
    first = client.get(stored["url"])
    again = client.get(stored["url"], headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    head = client.head(stored["url"])
    assert head.status_code == 200 and head.data == b""


@pytest.mark.parametrize(
    "path",
    [
        "/files/images-receipts/{receipt}",
        "/files/images/../images-receipts/{receipt}",
        "/files/images/..%2fimages-receipts%2f{receipt}",
        "/files/..%2f..%2fetc/passwd",
        "/files/images/%2e%2e%2fdev-signing-key",
        "/files/.meta/{name}.json",
        "/files/images/{name}.json",
        "/files/images/{upper}",
        "/files/images/00000000-0000-4000-8000-000000000000.jpg",
    ],
)
def test_serves_nothing_but_stored_images(client, settings, stored, path):
    name = stored["url"].rsplit("/", 1)[1]
    receipt = os.listdir(os.path.join(settings["STORAGE_PATH"], "images-receipts"))[0]
    response = client.get(path.format(receipt=receipt, name=name, upper=name.upper()))
    assert response.status_code == 404
    assert response.is_json


def test_public_base_url_replaces_the_apps_own_url(settings, images):
    from inbox import create_app
    from tests.harness import mailgun_form

    app = create_app({**settings, "PUBLIC_BASE_URL": "https://cdn.example.com/photos/"})
    url = (
        app.test_client()
        .post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])))
        .get_json()["stored"][0]["url"]
    )
    assert url.startswith("https://cdn.example.com/photos/") and url.endswith(".jpg")


def test_forwarded_host_is_ignored_unless_a_proxy_is_trusted(settings, images):
    from inbox import create_app
    from tests.harness import mailgun_form

    forwarded = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    for trusted, expected in (("0", "http://localhost/files/"), ("1", "https://evil.example/files/")):
        app = create_app({**settings, "INBOX_TRUSTED_PROXIES": trusted})
        answer = (
            app.test_client()
            .post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"])), headers=forwarded)
            .get_json()
        )
        assert answer["stored"][0]["url"].startswith(expected)


@pytest.mark.parametrize("path", ["/files//images/{name}", "//webhooks//mailgun"])
def test_a_doubled_slash_is_a_json_404_not_a_redirect_to_the_host_the_client_named(client, stored, path):
    name = stored["url"].rsplit("/", 1)[1]
    response = client.open(
        path.format(name=name),
        method="POST" if "webhooks" in path else "GET",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 404 and response.is_json
    assert "Location" not in response.headers


def test_refusals_keep_the_headers_http_requires_with_their_json(client, stored):
    wrong_method = client.put(stored["url"])
    assert wrong_method.status_code == 405 and wrong_method.is_json
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    webhook = client.get("/webhooks/mailgun")
    assert webhook.status_code == 405 and set(webhook.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}

    past_the_end = client.get(stored["url"], headers={"Range": f"bytes={stored['size']}-"})
    assert past_the_end.status_code == 416 and past_the_end.is_json
    assert past_the_end.headers["Content-Range"] == f"bytes */{stored['size']}"
