"""What every location parser shares: the error that keeps an image from being published, the
bounded read that raises it when the file ends before the metadata it claims, zeroing a range (once,
however many values share it), reading a block once however many pointers lead to it, telling spans
that overlap, and blanking a block that writers split over several segments."""

from __future__ import annotations

import bisect
import io
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import BinaryIO

MAX_JOINED_BYTES = 16 * 1024 * 1024
# Zeroed runs from this length up are remembered, so that values sharing them are not read again; a
# shorter one costs little to read again, and remembering each would grow the list with the file.
REMEMBERED_ZEROS = 4096


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


def zero_once(file: BinaryIO, start: int, end: int, zeroed: list[int]) -> bool:
    """Overwrite file[start:end] with zeros; True when any byte was not zero already.

    `zeroed` holds the runs known zero, as sorted file positions (start, end, start, end...): their
    bytes are not read again, and this range joins them when it is long.
    """
    lo, hi = bisect.bisect_left(zeroed, start), bisect.bisect_right(zeroed, end)
    outside = [start] * (lo % 2 == 0), [end] * (hi % 2 == 0)  # the range's ends that lie outside those runs
    edges = outside[0] + zeroed[lo:hi] + outside[1]  # where the bytes not known zero start and end
    if end - start >= REMEMBERED_ZEROS:
        zeroed[lo:hi] = outside[0] + outside[1]
    pairs = zip(edges[::2], edges[1::2], strict=True)
    gaps = [(at, to) for at, to in pairs if read_exact(file, at, to - at).count(0) < to - at]
    return bool(gaps) and zero_all(file, gaps)


def first_time(read: list[tuple[int, int]], kind: str, start: int, length: int, limit: int) -> bool:
    """True the first time the `length` bytes at `start` are read as one of `kind`; False when they were already.

    `read` holds the sorted (start, end) ranges of `kind` read so far. LocationError when this range overlaps
    another of them, which no writer makes and which would be read again, or when there are more than `limit`.
    """
    span = (start, start + length)
    at = bisect.bisect_left(read, span)
    if at < len(read) and read[at] == span:
        return False
    if (at and read[at - 1][1] > start) or (at < len(read) and read[at][0] < span[1]):
        raise LocationError(f"two {kind} share bytes")
    if len(read) == limit:
        raise LocationError(f"there are more than {limit} {kind}")
    read.insert(at, span)
    return True


def overlap(spans: Iterable[tuple[int, int]]) -> bool:
    """Whether two of the (offset, length) spans share bytes; the same span given twice does."""
    return any(offset + length > following for (offset, length), (following, _) in pairwise(sorted(spans)))


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
