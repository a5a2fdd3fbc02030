"""Object names and the local store: deterministic, unguessable names; atomic, copy-free writes."""

import os
import threading
import uuid

import pytest

from inbox.local_store import LinkingLocalStorageDriver
from inbox.storage import Store, content_disposition, object_name, store_image

KEY = b"k" * 32


def test_names_are_random_looking_uuids_with_the_detected_extension():
    name = object_name(KEY, "<m@x>", "a@x", "ab" * 32, ".jpg")
    assert name.endswith(".jpg")
    assert uuid.UUID(name[:-4]).version == 4


def test_names_are_the_same_for_a_redelivery_and_differ_in_every_input():
    base = ("<m@x>", "a@x", "ab" * 32, ".jpg")
    assert object_name(KEY, *base) == object_name(KEY, *base)
    variants = [
        object_name(b"another secret" * 3, *base),
        object_name(KEY, "<other@x>", *base[1:]),
        object_name(KEY, base[0], "b@x", *base[2:]),
        object_name(KEY, *base[:2], "cd" * 32, ".jpg"),
        # field boundaries matter: ("a", "b@x") is not ("ab", "@x")
        object_name(KEY, "<m@x>a", "@x", *base[2:]),
    ]
    assert len({object_name(KEY, *base), *variants}) == 6


def test_content_disposition_follows_rfc_6266():
    assert content_disposition("") == "inline"
    assert content_disposition("photo.jpg") == "inline; filename=\"photo.jpg\"; filename*=UTF-8''photo.jpg"
    header = content_disposition('Ärger "quoted";\\.jpg')
    assert header.startswith('inline; filename="_rger _quoted_;_.jpg"; ')
    assert header.endswith("filename*=UTF-8''%C3%84rger%20%22quoted%22%3B%5C.jpg")


@pytest.fixture
def local(tmp_path):
    driver = LinkingLocalStorageDriver(str(tmp_path), ex_use_locking=False)
    images, receipts = driver.create_container("images"), driver.create_container("receipts")
    return Store("local", images, receipts, None, True, str(tmp_path), True, "public, max-age=60", b"k" * 32)


def spooled(tmp_path, content=b"\xff\xd8\xff image bytes"):
    path = tmp_path / "spool-1"
    path.write_bytes(content)
    return str(path)


def test_the_spooled_file_becomes_the_object_without_a_copy(tmp_path, local):
    path = spooled(tmp_path)
    obj = store_image(local, path, "n.jpg", "image/jpeg", "holiday.jpg")

    assert os.stat(tmp_path / "images" / "n.jpg").st_ino == os.stat(path).st_ino
    assert obj.extra["content_type"] == "image/jpeg"
    assert obj.extra["headers"]["Content-Disposition"].endswith("''holiday.jpg")
    assert obj.meta_data == {}  # the name is in Content-Disposition only


def test_storing_the_same_name_again_is_harmless(tmp_path, local):
    store_image(local, spooled(tmp_path), "n.jpg", "image/jpeg", "a.jpg")
    store_image(local, spooled(tmp_path), "n.jpg", "image/jpeg", "a.jpg")
    assert os.listdir(tmp_path / "images") == ["n.jpg"]


def test_stored_metadata_survives_a_new_driver(tmp_path, local):
    store_image(local, spooled(tmp_path), "n.jpg", "image/jpeg", "a.jpg")
    fresh = LinkingLocalStorageDriver(str(tmp_path), ex_use_locking=False)
    assert fresh.get_object("images", "n.jpg").extra["content_type"] == "image/jpeg"


def test_across_file_systems_it_copies_then_renames_into_place(tmp_path, local, monkeypatch):
    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    events, fsync, setxattr = [], os.fsync, os.setxattr

    def recorded_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recorded_setxattr(path, *args):
        events.append(("setxattr", os.path.realpath(path)))
        setxattr(path, *args)

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "setxattr", recorded_setxattr)
    path = spooled(tmp_path, b"\xff\xd8\xff" + os.urandom(3_000_000))
    store_image(local, path, "n.jpg", "image/jpeg", "a.jpg")

    stored = str((tmp_path / "images" / "n.jpg").resolve())
    assert (tmp_path / "images" / "n.jpg").read_bytes() == open(path, "rb").read()
    assert [name for name in os.listdir(tmp_path / "images") if name.startswith(".tmp")] == []
    # The copy's metadata is made durable with it, and the spool (thrown away after) is not fsynced.
    assert events.index(("fsync", stored)) > events.index(("setxattr", stored))
    assert ("fsync", os.path.realpath(path)) not in events
    assert ("fsync", str((tmp_path / "images").resolve())) in events


def test_private_containers_are_for_this_user_only_and_their_objects_can_change(tmp_path):
    driver = LinkingLocalStorageDriver(str(tmp_path), ex_use_locking=False, private=frozenset({"receipts"}))
    receipts, images = driver.create_container("receipts"), driver.create_container("images")
    first, second = spooled(tmp_path, b"first"), str(tmp_path / "spool-2")
    open(second, "wb").write(b"second")
    driver.upload_object(first, receipts, "r.json")
    driver.upload_object(second, receipts, "r.json")  # a receipt's content changes: the new one wins
    assert (tmp_path / "receipts" / "r.json").read_bytes() == b"second"
    assert os.stat(tmp_path / "receipts").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "receipts" / "r.json").st_mode & 0o777 == 0o600
    driver.upload_object(spooled(tmp_path), images, "n.jpg")
    assert os.stat(tmp_path / "images" / "n.jpg").st_mode & 0o777 == 0o644


def test_threads_replacing_one_object_at_once_all_succeed_and_one_content_wins(tmp_path, local):
    # What two /healthz probes, or two records of one mail, do at once under gthread.
    files = []
    for number in range(8):
        files.append(tmp_path / f"spool-{number}")
        files[-1].write_bytes(b"content %d" % number)
    barrier, failures = threading.Barrier(len(files)), []

    def upload(path):
        barrier.wait()
        for _ in range(30):
            try:
                local.receipts.driver.upload_object(str(path), local.receipts, "r.json")
            except OSError as error:
                failures.append(error)

    threads = [threading.Thread(target=upload, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert (tmp_path / "receipts" / "r.json").read_bytes() in {path.read_bytes() for path in files}
    assert os.listdir(tmp_path / "receipts") == ["r.json"]  # no temporary name left behind


def test_where_files_keep_no_attributes_the_metadata_goes_beside_them(tmp_path, local, monkeypatch):
    def no_attributes(*args):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", no_attributes)
    monkeypatch.setattr(os, "getxattr", no_attributes)
    store_image(local, spooled(tmp_path), "n.jpg", "image/jpeg", "a.jpg")
    assert (tmp_path / ".meta" / "images" / "n.jpg.json").exists()
    fresh = LinkingLocalStorageDriver(str(tmp_path), ex_use_locking=False)
    assert fresh.get_object("images", "n.jpg").extra["content_type"] == "image/jpeg"
