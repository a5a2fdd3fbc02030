"""What every location parser shares: the error that keeps an image from being published, and the
bounded read that raises it when the file ends before the metadata it claims."""

from __future__ import annotations

from typing import BinaryIO


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
