"""What every provider record holds, and what several providers share: checked answers, origins, timeouts."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests
from libcloud.common.types import LibcloudError
from libcloud.http import LibcloudConnection

from ..config import ConfigError

# Seconds to connect, and to wait for each answer (each read, not the whole transfer), on every
# storage request; libcloud's own default is 60. A delivery waits for storage before it answers
# Mailgun, and /healthz for its probe: a hung endpoint should cost seconds, then a 503.
DEFAULT_STORAGE_TIMEOUT = 10.0


def storage_timeout(config: Mapping) -> float:
    """STORAGE_TIMEOUT in seconds (a number or its text), validated; the default when it is absent."""
    raw = config.get("STORAGE_TIMEOUT", DEFAULT_STORAGE_TIMEOUT)
    text = str(raw).strip()
    try:
        seconds = float(text) if text.isascii() else float("nan")  # float() reads other scripts' digits too
    except ValueError:
        seconds = float("nan")
    if not 0.1 <= seconds <= 300:  # also refuses nan and inf
        raise ConfigError(
            f"STORAGE_TIMEOUT={raw!r}: set it to the seconds a storage request may wait, "
            f"0.1 to 300 (default {DEFAULT_STORAGE_TIMEOUT:g})"
        )
    return seconds


class TimedLibcloudConnection(LibcloudConnection):
    """libcloud's HTTP connection, sending uploads with the timeout it keeps for every other request.

    libcloud 3.9's prepared_request (the path of every upload_object) leaves the session's timeout
    out, so an endpoint that accepts an upload and never answers would hold a delivery for ever.
    """

    def prepared_request(self, method, url, body=None, headers=None, raw=False, stream=False):
        request = requests.Request(
            method, "".join([self.host, url]), data=body, headers=self._normalize_headers(headers=headers)
        )
        self.response = self.session.send(
            self.session.prepare_request(request), stream=stream, verify=self.verification, timeout=self.session.timeout
        )


def time_out_uploads(driver) -> None:
    """Make `driver` send uploads with its timeout too (see TimedLibcloudConnection)."""
    connection = driver.connection
    connection.conn_class = TimedLibcloudConnection
    if isinstance(connection.connection, LibcloudConnection):  # already connected while signing in
        connection.connection.__class__ = TimedLibcloudConnection


def expect(answer, *statuses) -> None:
    """Drivers treat some 4xx answers as success; an access change must really have succeeded."""
    if answer.status not in statuses:
        body = answer.body.decode(errors="replace") if isinstance(answer.body, bytes) else str(answer.body)
        raise LibcloudError(f"HTTP {answer.status}: {body[:300]}")


def origin(connection) -> str:
    scheme, default_port = ("https", 443) if connection.secure else ("http", 80)
    port = int(connection.port)
    return f"{scheme}://{connection.host}" + ("" if port == default_port else f":{port}")


def standard_headers(disposition: str, cache_control: str) -> dict:
    return {"Content-Disposition": disposition, "Cache-Control": cache_control}


def temporary_folder(driver) -> str:
    return tempfile.gettempdir()


@dataclass(frozen=True)
class CreateOnly:
    """How a provider's PUT creates an object only where none exists, and how its driver reports a refusal."""

    headers: Mapping[str, str]
    # The service answers 412 (or Azure 409) when the object exists; libcloud reports it only as a
    # LibcloudError whose text names the status, or for Swift the missing etag of that answer.
    refusal: re.Pattern
    # Empty where the service decides between racing PUTs atomically; else what to tell the operator.
    race_caveat: str = ""


IF_NONE_MATCH = {"If-None-Match": "*"}


@dataclass(frozen=True)
class ContainerNames:
    """The container names a service accepts (narrower than config's), and that rule in words."""

    pattern: re.Pattern
    rule: str


@dataclass(frozen=True)
class Provider:
    needs: Mapping[str, str]  # settings it cannot do without → what to put there
    open: Callable  # settings → libcloud driver
    make_public: Callable | None  # (driver, container); None: nothing to do
    url_base: Callable | None  # (driver, container, settings) → URL prefix; None: the app serves the objects
    create_only: CreateOnly | None  # how a PUT creates only where nothing is; None: the store links files
    public_fix: str = ""  # what the operator can do when making the container public is refused
    upload_headers: Callable = standard_headers  # (disposition, cache_control) → headers for upload_object
    spool_folder: Callable = temporary_folder  # driver → where attachments are spooled
    links_spool: bool = False  # the spool file becomes the object (so write it out to disk as it arrives)
    container_names: ContainerNames | None = None  # None: any name config.container_name lets through
