"""The service run the way the Procfile runs it: real gunicorn on 127.0.0.1, real HTTP deliveries."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import SIGNING_KEY, free_port, running, signed_fields

from inbox.cli import build_delivery
from inbox.mailgun import sign

ROOT = Path(__file__).resolve().parent.parent
PROCFILE_COMMAND = shlex.split(ROOT.joinpath("Procfile").read_text().split("web:", 1)[1])
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def procfile_env(port, **settings):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAILGUN_", "STORAGE_", "INBOX_"))}
    # Procfile platforms set PORT (gunicorn then binds 0.0.0.0); the test keeps to 127.0.0.1.
    return {**env, "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}", **settings}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    port = free_port()
    storage = tmp_path_factory.mktemp("gunicorn-storage")
    env = procfile_env(port, MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY, STORAGE_PATH=str(storage))
    assert PROCFILE_COMMAND == ["gunicorn", "inbox:create_app()"]
    with running([GUNICORN, *PROCFILE_COMMAND[1:]], port=port, env=env, cwd=ROOT,
                 logs=tmp_path_factory.mktemp("gunicorn-logs")):
        yield f"http://127.0.0.1:{port}", storage


def post(url, paths, **overrides):
    fields, files = build_delivery(paths, key=SIGNING_KEY, sender="a@example.com", recipient="photos@example.com",
                                   subject="hi", message_id=overrides.pop("message_id", "<p1@example.com>"))
    try:
        return requests.post(url + "/webhooks/mailgun", data={**fields, **overrides}, files=files, timeout=60)
    finally:
        for _, (_, file, _) in files:
            file.close()


def test_delivers_and_serves_under_gunicorn(service, tmp_path, images):
    url, _ = service
    for extension in (".jpg", ".heic"):
        (tmp_path / f"photo{extension}").write_bytes(images[extension])
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4\n%%EOF")

    response = post(url, [tmp_path / "photo.jpg", tmp_path / "photo.heic", tmp_path / "notes.pdf"])

    assert response.status_code == 200
    body = response.json()
    assert [item["content_type"] for item in body["stored"]] == ["image/jpeg", "image/heic"]
    assert body["rejected"][0]["content_type"] == "application/pdf"
    for item, extension in zip(body["stored"], (".jpg", ".heic")):
        assert item["url"].startswith(url + "/files/images/")
        fetched = requests.get(item["url"], timeout=10)
        assert fetched.content == images[extension]
        assert fetched.headers["X-Content-Type-Options"] == "nosniff"


def test_a_25_mib_photo_is_stored_whole(service, tmp_path):
    url, storage = service
    photo = tmp_path / "big.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(25 * 1024 * 1024 - 11))

    response = post(url, [photo], message_id="<big@example.com>")

    assert response.status_code == 200
    stored = storage / "images" / response.json()["stored"][0]["url"].rsplit("/", 1)[1]
    assert stored.read_bytes() == photo.read_bytes()


def test_a_body_far_beyond_mailguns_size_gets_a_413_answer_not_a_reset(service):
    url, _ = service
    body = b"x" * (150 * 1024 * 1024)
    response = requests.post(url + "/webhooks/mailgun", data=body, timeout=60,
                             headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413
    assert "error" in response.json()


def test_forged_delivery_is_refused_over_http(service, tmp_path, images):
    url, storage = service
    (tmp_path / "a.jpg").write_bytes(images[".jpg"])
    before = sorted(os.listdir(storage / "images"))

    response = post(url, [tmp_path / "a.jpg"], signature="f" * 64, message_id="<forged@example.com>")

    assert response.status_code == 403
    assert sorted(os.listdir(storage / "images")) == before


def test_garbage_bodies_get_json_4xx(service):
    url, _ = service
    fields = "".join(f'--XX\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     for k, v in signed_fields().items()).encode()
    for body, content_type in [
        (b"\x00" * 5000, "multipart/form-data; boundary=XX"),
        (b'{"json": true}', "application/json"),
        (fields + b'--XX\r\nContent-Disposition: form-data; name="attachment-1"; filename="\xff.jpg"\r\n\r\nx\r\n--XX--\r\n',
         "multipart/form-data; boundary=XX"),
    ]:
        response = requests.post(url + "/webhooks/mailgun", data=body, headers={"Content-Type": content_type}, timeout=10)
        assert response.status_code == 400, response.text
        assert response.json()["reason"]


def test_production_refuses_to_start_without_a_signing_key(tmp_path):
    env = procfile_env(free_port(), STORAGE_PATH=str(tmp_path))
    result = subprocess.run([GUNICORN, *PROCFILE_COMMAND[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0
    assert result.stderr.count("MAILGUN_WEBHOOK_SIGNING_KEY is not set") == 1
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr
    assert len(result.stderr.splitlines()) <= 3, result.stderr


@pytest.mark.parametrize("fields", [
    {"signature": "\u00e9" * 64},  # hmac.compare_digest raised TypeError on non-ASCII text: a 500
    # "²".isdigit() is True, and once the signature matched, int("²") raised: a 500
    {"timestamp": "\u00b2", "token": "a" * 50, "signature": sign(SIGNING_KEY, "\u00b2", "a" * 50)},
    {"token": "\u0663" * 50},
])
def test_signature_fields_of_the_wrong_form_are_a_403_not_a_500(service, tmp_path, images, fields):
    url, _ = service
    (tmp_path / "a.jpg").write_bytes(images[".jpg"])
    response = post(url, [tmp_path / "a.jpg"], message_id="<odd-signature@example.com>", **fields)
    assert response.status_code == 403, response.text
    assert response.json()["reason"]
