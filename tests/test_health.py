"""/healthz: 200 while storage is usable, 503 with a reason when it is not."""

import os
import shutil


def test_healthy_on_local_storage(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "storage": "local"}


def test_unavailable_when_the_store_is_gone(client, settings):
    shutil.rmtree(settings["STORAGE_PATH"])
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "images" in response.get_json()["reason"]


def test_unavailable_when_the_spool_takes_no_files(client, settings):
    spool = f"{settings['STORAGE_PATH']}/.spool"
    shutil.rmtree(spool)
    open(spool, "w").close()  # a file where the folder was
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "spool" in response.get_json()["reason"]


def test_unavailable_when_the_private_container_takes_no_objects(client, settings):
    receipts = f"{settings['STORAGE_PATH']}/images-receipts"
    shutil.rmtree(receipts)
    open(receipts, "w").close()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_a_health_check_leaves_nothing_behind(client, settings):
    assert client.get("/healthz").status_code == 200
    for folder, kept in (("images", []), ("images-receipts", ["name-key"]), (".spool", [])):
        assert os.listdir(f"{settings['STORAGE_PATH']}/{folder}") == kept
