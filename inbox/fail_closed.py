"""What every location parser shares: the error that keeps an image from being published, the
bounded read that raises it when the file ends before the metadata it claims, zeroing a range, and
blanking a block that writers split over several segments."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

MAX_JOINED_BYTES = 16 * 1024 * 1024


class LocationError(Exception):
    """Location may be present but the metadata cannot be parsed safely: the image must not be published."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_exact(file: BinaryIO, offset: int, length: int) -> bytes:
    """`length` bytes at `offset`, or LocationError when the file ends first."""
    file.seek(offset)
    data = file.read(length)
    if len(data) != length:
        raise LocationError("the file ends inside its metadata")
    return data


def zero(file: BinaryIO, start: int, end: int) -> None:
    """Overwrite file[start:end] with zeros."""
    file.seek(start)
    file.write(bytes(end - start))


def zero_all(file: BinaryIO, ranges: list[tuple[int, int]]) -> bool:
    """Overwrite every (start, end) range of the file with zeros; True (the file changed)."""
    for start, end in ranges:
        zero(file, start, end)
    return True


def blank_joined(file: BinaryIO, pieces: list[tuple[int, int]], blank: Callable[[BinaryIO, bytes], bool]) -> bool:
    """Blank a block split over the file ranges `pieces` ((start, length) each), read joined as readers join it.

    `blank(copy, joined)` blanks `copy`, a file of the joined bytes; each range then gets its changed
    bytes back. True when any changed.
    """
    if sum(length for _, length in pieces) > MAX_JOINED_BYTES:
        raise LocationError(f"a metadata block split over segments is larger than {MAX_JOINED_BYTES >> 20} MiB")
    joined = b"".join(read_exact(file, start, length) for start, length in pieces)
    copy = io.BytesIO(joined)
    if not blank(copy, joined):
        return False
    blanked, at = copy.getbuffer(), 0
    for start, length in pieces:
        if blanked[at : at + length] != joined[at : at + length]:
            file.seek(start)
            file.write(blanked[at : at + length])
        at += length
    return True
