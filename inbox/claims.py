"""Create-if-absent uploads on every provider: the one step that lets a single worker, on a single
instance, claim a name (a Mailgun token) however many deliveries of it run at once.

Cloud providers: one PUT made conditional by the headers in the provider's record
(providers.CreateOnly): S3 and Swift `If-None-Match: *`, Azure the same, Google
`x-goog-if-generation-match: 0`. libcloud reports the service's refusal only as a LibcloudError
text, so a refusal is believed only once a lookup shows the object is there.
Local store: the (complete) file is hard-linked into place; a link is created only where no
name exists, and never shows a half-written file (O_CREAT|O_EXCL would).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from libcloud.common.types import LibcloudError
from libcloud.storage.types import ObjectDoesNotExistError, ObjectHashMismatchError

from . import providers
from .local_store import fsync_path


def upload_if_absent(container, name: str, path: str, *, durable: bool = True) -> bool:
    """Upload the file at `path` as `name` in `container` unless an object of that name exists.

    True: this call created it. False: it existed already (made by anyone, at any time).
    Anything else raises what the upload raises (one of storage.STORAGE_ERRORS).
    The local store links the file itself into place (so later writes to it change the
    object); without `durable` it does not wait for the disk.
    """
    driver = container.driver
    create_only = providers.create_only(driver)
    if create_only is None:
        return _link_if_absent(driver, container, name, path, durable)
    try:
        driver.upload_object(path, container, name, headers=dict(create_only.headers))
    except ObjectHashMismatchError:
        raise  # the PUT was accepted, with other bytes than ours: not a refusal
    except LibcloudError as error:
        if create_only.refusal.search(str(error.value)) and _exists(container, name):
            return False
        raise
    return True


def race_caveat(driver) -> str:
    """What to tell the operator at start-up where racing creates of one name can all succeed ("" if none)."""
    create_only = providers.create_only(driver)
    return create_only.race_caveat if create_only else ""


def _exists(container, name: str) -> bool:
    try:
        container.driver.get_object(container.name, name)
    except ObjectDoesNotExistError:
        return False
    return True


def _link_if_absent(driver, container, name: str, path: str, durable: bool) -> bool:
    target = os.path.join(driver.get_container_cdn_url(container, check=True), name)
    folder = os.path.dirname(target)
    if durable:
        fsync_path(path)
    try:
        os.link(path, target)  # the spool is inside the store: the file itself becomes the object
    except FileExistsError:
        return False
    except OSError:  # another file system: a copy, written out before it gets the name
        with open(path, "rb") as source, tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-") as copy:
            shutil.copyfileobj(source, copy)
            copy.flush()
            os.fsync(copy.fileno())
            try:
                os.link(copy.name, target)
            except FileExistsError:
                return False
    if durable:
        fsync_path(folder)  # the new name must survive a crash, not only the bytes
    return True
