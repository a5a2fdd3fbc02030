"""A zlib stream of an exact length: what compressed PNG text is blanked into, in place."""

from __future__ import annotations

import random
import zlib

import pytest

from inbox.zlib_in_place import RETRIED_BYTES, zlib_of_length

TEXTS = {
    "nothing": b"",
    "one letter": b"N",
    "a place": b"Philadelphia",
    "hex": random.Random(1).randbytes(3000).hex().encode(),
    "spaces": b" " * 70_000,
    "past the retries": random.Random(2).randbytes(RETRIED_BYTES // 2 + 1).hex().encode(),
}


@pytest.mark.parametrize("case", TEXTS)
def test_streams_are_exactly_as_long_as_asked_and_inflate_to_the_text(case):
    text = TEXTS[case]
    smallest = len(zlib.compress(text, 9))
    made = {length: zlib_of_length(length, text) for length in range(smallest, smallest + 25)}

    assert all(len(stream) == length and zlib.decompress(stream) == text for length, stream in made.items() if stream)
    # Every length from 5 bytes over the smallest on can be made; the few between may not.
    assert [length for length, stream in made.items() if stream is None and length >= smallest + 5] == []
    assert made[smallest] is not None


def test_a_length_under_any_stream_of_the_text_is_none():
    assert zlib_of_length(7, b"") is None  # a zlib stream is 8 bytes at least
    assert zlib_of_length(len(zlib.compress(b"Philadelphia", 9)) - 1, b"Philadelphia") is None


def test_each_compression_is_charged_first_so_the_caller_can_stop_the_tries():
    charged = []

    def charge(size: int) -> None:
        charged.append(size)
        if len(charged) == 3:
            raise TimeoutError("enough")

    one_over = len(zlib.compress(b"Philadelphia", 9)) + 1  # no empty block is 1 byte: other ways are tried
    with pytest.raises(TimeoutError):
        zlib_of_length(one_over, b"Philadelphia", charge)
    assert charged == [12, 12, 12]
