"""
Tests for the incremental echo comparator: what was sent, fed in any chunks, against
what comes back, in any chunks; the first wrong or extra byte is the verdict.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from tlsecho._net._comparator import Differs, EchoComparator, RunsPast

SENT = bytes(range(256)) * 4


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    """C{data} in pieces of C{size} bytes (the last one shorter)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _sent(*pieces: bytes) -> EchoComparator:
    """A comparator told that C{pieces} were sent, in order."""
    comparator = EchoComparator()
    for piece in pieces:
        comparator.expect(piece)
    return comparator


@pytest.mark.parametrize("sent_size", [1, 7, 256, len(SENT)])
@pytest.mark.parametrize("received_size", [1, 13, 1000, len(SENT)])
def test_identical_echo_in_any_chunks_is_complete(
    sent_size: int, received_size: int
) -> None:
    """An identical echo is complete however the sent and received bytes are split."""
    comparator = _sent(*_chunks(SENT, sent_size))
    for piece in _chunks(SENT, received_size):
        assert comparator.receive(piece) is None
    assert comparator.complete
    assert (comparator.sent, comparator.matched, comparator.outstanding) == (
        len(SENT),
        len(SENT),
        0,
    )


def test_partial_echo_is_not_complete() -> None:
    """Until every byte sent has come back, the echo is not complete."""
    comparator = _sent(b"hello")
    assert comparator.receive(b"hel") is None
    assert not comparator.complete
    assert (comparator.matched, comparator.outstanding) == (3, 2)


def test_nothing_sent_and_nothing_received_is_complete() -> None:
    """An empty exchange is complete; empty pieces change nothing."""
    comparator = _sent(b"")
    assert comparator.receive(b"") is None
    assert comparator.complete
    assert (comparator.sent, comparator.matched) == (0, 0)


@pytest.mark.parametrize("received_size", [1, 3, 5, 64])
@pytest.mark.parametrize("offset", [0, 1, 511, 512, len(SENT) - 1])
def test_differing_byte_is_reported_at_its_offset(offset: int, received_size: int) -> None:
    """A changed byte is reported at its offset in the whole echo, with both values,
    wherever the chunk and sent-piece boundaries fall."""
    echo = bytearray(SENT)
    echo[offset] ^= 0x80
    comparator = _sent(*_chunks(SENT, 512))
    faults = [comparator.receive(piece) for piece in _chunks(bytes(echo), received_size)]
    fault = Differs(offset, SENT[offset], SENT[offset] ^ 0x80)
    assert fault in faults
    assert comparator.fault == fault
    assert comparator.matched == offset
    assert not comparator.complete


def test_differing_byte_reason_names_offset_and_bytes_in_hex() -> None:
    """The reason names the offset and both bytes, the received one in hex, never raw."""
    comparator = _sent(b"hello")
    fault = comparator.receive(b"hel\x1bo")
    assert fault is not None
    assert (
        fault.reason
        == "echo differs from what was sent at byte 3: sent 0x6c, received 0x1b"
    )


@pytest.mark.parametrize("split", [None, 3, 5])
def test_byte_past_what_was_sent_runs_past(split: int | None) -> None:
    """The first byte after everything sent is reported at its offset, whether it
    comes with the end of the echo, alone, or mid-chunk."""
    comparator = _sent(b"hel", b"lo")
    echo = b"hello, and more"
    pieces = [echo] if split is None else [echo[:split], echo[split:]]
    faults = [comparator.receive(piece) for piece in pieces]
    assert faults[-1] == RunsPast(5)
    assert comparator.matched == 5
    assert RunsPast(5).reason == (
        "echo runs past what was sent at byte 5: only 5 bytes were sent"
    )


def test_anything_back_when_nothing_was_sent_runs_past_at_zero() -> None:
    """With nothing sent, the first byte received runs past, at byte 0."""
    fault = _sent().receive(b"x")
    assert fault == RunsPast(0)
    assert fault.reason == "echo runs past what was sent at byte 0: nothing was sent"


def test_one_byte_sent_is_singular() -> None:
    """The reason speaks of one byte in the singular."""
    fault = _sent(b"x").receive(b"xy")
    assert fault is not None
    assert fault.reason == "echo runs past what was sent at byte 1: only 1 byte was sent"


def test_echo_ahead_of_what_was_sent_so_far_runs_past() -> None:
    """Sending in pieces, an echo of bytes not sent yet runs past what was sent so far."""
    comparator = _sent(b"abc")
    assert comparator.receive(b"ab") is None
    assert comparator.receive(b"cd") == RunsPast(3)


def test_sending_in_pieces_interleaved_with_the_echo() -> None:
    """Pieces sent while the echo comes back (a streaming client) compare in order."""
    comparator = EchoComparator()
    for piece in (b"first ", b"second ", b"third"):
        comparator.expect(piece)
        assert comparator.receive(piece[:2]) is None
        assert comparator.receive(piece[2:]) is None
        assert comparator.complete
    assert comparator.matched == len(b"first second third")


def test_fault_is_final() -> None:
    """After a fault, later bytes are ignored and the first fault stays the verdict."""
    comparator = _sent(b"hello")
    first = comparator.receive(b"hxllo")
    assert first == Differs(1, ord("e"), ord("x"))
    assert comparator.receive(b"anything") == first
    comparator.expect(b" more")
    assert comparator.receive(b" more") == first
    assert (comparator.fault, comparator.matched) == (first, 1)
    assert not comparator.complete


def test_bytes_after_a_fault_are_not_kept() -> None:
    """An endless stream after a fault leaves the comparator's memory flat."""
    comparator = _sent(b"hello")
    comparator.receive(b"hello!")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(256):
            comparator.receive(bytes(bytearray(65536)))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


def test_matched_bytes_are_released() -> None:
    """Sent pieces whose echo has all come back are no longer held."""
    comparator = EchoComparator()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(64):
            piece = bytes(bytearray(65536))
            comparator.expect(piece)
            comparator.receive(bytes(bytearray(65536)))
            del piece
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert comparator.complete
    assert grown < 64 * 1024, grown
