"""Makes a zlib stream of an exact length that inflates to given bytes, so that compressed metadata can
change in place, without moving anything after it (a PNG's zTXt and compressed iTXt, say).

Deflate allows empty blocks, which add nothing to what a reader inflates. The bytes are compressed
the usual way and empty blocks make up the length: in front of the compressed blocks (a stored one
is 5 bytes; a fixed-Huffman one then a stored one, 6), or after them, once a sync flush has ended
them on a byte, before the Adler-32 (any 2 bytes or more). When neither fits, other settings are
tried, since each compresses to a different length, then a block boundary at points through the
text (each costs a byte or so): a short place name blanked in a small profile saves only 2 to 4
bytes, which no empty block fills. Nothing of the old stream is left.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator

# Empty blocks, none of them the last, each run ending on a byte.
_STORED = b"\x00\x00\x00\xff\xff"
_FIXED_THEN_STORED = b"\x02\x00\x00\x00\xff\xff"
# Endings of 2 to 6 bytes that end the stream: one to three empty fixed-Huffman blocks, an empty stored
# block, a fixed-Huffman block then a stored one.
_LAST = {
    2: b"\x03\x00",
    3: b"\x02\x0c\x00",
    4: b"\x02\x08\x30\x00",
    5: b"\x01\x00\x00\xff\xff",
    6: b"\x02\x04\x00\x00\xff\xff",
}
_HEADER = b"\x78\x01"  # a zlib header, for a stream of no blocks of data
# (level, strategy) to try, best first; beyond RETRIED_BYTES only the first. Block boundaries are
# tried at SPLITS_TRIED points through a text of SPLIT_BYTES or less.
_SETTINGS = [(9, zlib.Z_DEFAULT_STRATEGY), (9, zlib.Z_FILTERED), (9, zlib.Z_RLE), (9, zlib.Z_FIXED)]
_SETTINGS += [(1, zlib.Z_DEFAULT_STRATEGY), (4, zlib.Z_DEFAULT_STRATEGY)]
RETRIED_BYTES = 1024 * 1024
SPLIT_BYTES, SPLITS_TRIED = 64 * 1024, 64


def zlib_of_length(length: int, data: bytes, charge: Callable[[int], None] = lambda size: None) -> bytes | None:
    """A zlib stream of exactly `length` bytes that inflates to `data`; None when no way tried makes one.

    `charge(size)` is called before each compression of `size` bytes, and may raise to bound the time.
    """
    if not data:
        ending = _ending(length - len(_HEADER) - 4)
        return None if ending is None else _HEADER + ending + struct.pack(">I", zlib.adler32(b""))
    for whole, synced in _compressions(data, charge):
        before = _empty_blocks(length - len(whole))
        if before is not None:
            return whole[:2] + before + whole[2:]
        ending = _ending(length - len(synced) - 4) if synced else None
        if ending is not None:
            return synced + ending + struct.pack(">I", zlib.adler32(data))
    return None


def _compressions(data: bytes, charge: Callable[[int], None]) -> Iterator[tuple[bytes, bytes]]:
    """`data` compressed in each way tried, best first: the whole stream, and its blocks ended by a sync
    flush (no Adler-32 yet), or b"" where that is not tried."""
    for level, strategy in _SETTINGS[: None if len(data) <= RETRIED_BYTES else 1]:
        charge(len(data))
        compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
        blocks = compressor.compress(data)
        yield blocks + compressor.copy().flush(), blocks + compressor.flush(zlib.Z_SYNC_FLUSH)
    if len(data) > SPLIT_BYTES:
        return
    for at in range(1, len(data), max(1, len(data) // SPLITS_TRIED)):
        charge(len(data))
        compressor = zlib.compressobj(9)
        whole = compressor.compress(data[:at]) + compressor.flush(zlib.Z_PARTIAL_FLUSH)  # an empty block: 10 bits
        yield whole + compressor.compress(data[at:]) + compressor.flush(), b""


def _empty_blocks(size: int) -> bytes | None:
    """Empty blocks, not the last, of exactly `size` bytes ending on a byte (0, 5, 6, 10, 11, 12, …, any from 20)."""
    for sixes in range(5):
        fives, left = divmod(size - 6 * sixes, 5)
        if left == 0 and fives >= 0:
            return _FIXED_THEN_STORED * sixes + _STORED * fives
    return None


def _ending(size: int) -> bytes | None:
    """Empty blocks of exactly `size` bytes that end a stream (any from 2)."""
    if size < 2:
        return None
    stored, last = divmod(size - 2, len(_STORED))
    return _STORED * stored + _LAST[last + 2]
