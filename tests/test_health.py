"""/healthz: 200 while storage is usable, 503 with a reason when it is not."""

import io
import logging
import os
import shutil

import pytest


def test_healthy_on_local_storage(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "storage": "local"}


def test_unavailable_when_the_store_is_gone(client, settings):
    shutil.rmtree(settings["STORAGE_PATH"])
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "images" in response.get_json()["reason"]


@pytest.mark.parametrize(
    "folder, named", [(".spool", "the spool folder takes no files"), ("images-receipts", "local storage")]
)
def test_unavailable_when_a_folder_it_writes_to_takes_no_files(client, settings, folder, named):
    path = f"{settings['STORAGE_PATH']}/{folder}"
    shutil.rmtree(path)
    open(path, "w").close()  # a file where the folder was
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert named in response.get_json()["reason"]


def test_a_health_check_leaves_nothing_behind(client, settings):
    assert client.get("/healthz").status_code == 200
    for folder, kept in (("images", []), ("images-receipts", ["name-key"]), (".spool", [])):
        assert os.listdir(f"{settings['STORAGE_PATH']}/{folder}") == kept


@pytest.mark.parametrize(
    "folder, public",
    [
        (".spool", "the spool folder takes no files: not a directory"),
        ("images-receipts", "local storage: container images-receipts does not exist"),
    ],
)
def test_the_public_reason_names_the_part_and_the_error_and_the_log_the_details(client, settings, folder, public):
    path = f"{settings['STORAGE_PATH']}/{folder}"
    shutil.rmtree(path)
    open(path, "w").close()
    logger, logged = logging.getLogger("inbox"), io.StringIO()
    handler = logging.StreamHandler(logged)
    logger.addHandler(handler)
    try:
        response = client.get("/healthz")
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 503
    reason = response.get_json()["reason"]
    assert reason == public  # anyone may ask: no paths, hosts or object reprs
    assert logged.getvalue().count("\n") == 1 and public in logged.getvalue()
    assert path in logged.getvalue() or "LinkingLocalStorageDriver" in logged.getvalue()  # the operator's details
