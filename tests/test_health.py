"""/healthz: 200 while storage is usable, 503 with a reason when it is not."""
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
