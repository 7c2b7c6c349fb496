"""
Compare an echo with what was sent, as it arrives, in bounded memory.

An L{EchoComparator} is told the bytes sent (L{EchoComparator.expect}, any
number of times, in order) and fed the bytes received (L{EchoComparator.receive},
in whatever chunks they come).  The first received byte that differs from the
byte sent at its offset, or that comes past everything sent so far (an echo
server cannot echo what it was never sent), is the verdict: a L{Differs} or a
L{RunsPast} naming its offset, after which nothing more is compared or kept.
It keeps only the sent bytes whose echo has not come back yet, never the echo,
so what a peer sends cannot make it grow.  It is pure (no Twisted, no OpenSSL,
no I/O): a client that sends its input as it reads it can feed it chunk by chunk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Differs", "EchoComparator", "Fault", "RunsPast", "count_bytes"]


def count_bytes(count: int) -> str:
    """C{count} bytes, in words: C{"1 byte"}, C{"2 bytes"}."""
    return f"{count} byte" if count == 1 else f"{count} bytes"


@dataclass(frozen=True)
class Differs:
    """
    The echo has a byte that is not the one sent at that offset.

    @ivar offset: Where, counting from 0 at the first byte sent.
    @ivar sent: The byte sent there.
    @ivar received: The byte received instead.
    """

    offset: int
    sent: int
    received: int

    @property
    def reason(self) -> str:
        """One line saying so (byte values in hex: the peer's bytes never reach a
        terminal raw)."""
        return (
            f"echo differs from what was sent at byte {self.offset}: "
            f"sent 0x{self.sent:02x}, received 0x{self.received:02x}"
        )


@dataclass(frozen=True)
class RunsPast:
    """
    The echo goes on past the last byte sent.

    @ivar offset: The offset of the first extra byte, which is also the number
        of bytes sent when it arrived.
    """

    offset: int

    @property
    def reason(self) -> str:
        """One line saying so."""
        if self.offset == 0:
            sent = "nothing was sent"
        else:
            verb = "was" if self.offset == 1 else "were"
            sent = f"only {count_bytes(self.offset)} {verb} sent"
        return f"echo runs past what was sent at byte {self.offset}: {sent}"


#: Why an echo is wrong.
Fault = Differs | RunsPast


def _first_difference(sent: bytes, received: bytes) -> int:
    """The index of the first byte where two unequal, equally long strings differ."""
    return next(i for i, (a, b) in enumerate(zip(sent, received, strict=True)) if a != b)


class EchoComparator:
    """
    Compare an echo with what was sent, byte for byte, as it arrives.

    @ivar sent: How many bytes have been sent (given to L{expect}) so far.
    @ivar matched: How many bytes have come back identical so far (up to the
        fault, if there is one).
    @ivar fault: The first thing wrong with the echo, once there is one.
    """

    def __init__(self) -> None:
        #: Sent bytes whose echo has not (all) come back, oldest first; the
        #: first C{_start} bytes of the oldest have.
        self._pending: deque[bytes] = deque()
        self._start = 0
        self.sent = 0
        self.matched = 0
        self.fault: Fault | None = None

    @property
    def outstanding(self) -> int:
        """How many bytes sent have not come back yet."""
        return self.sent - self.matched

    @property
    def complete(self) -> bool:
        """Whether everything sent so far came back, identical."""
        return self.fault is None and self.matched == self.sent

    def expect(self, data: bytes) -> None:
        """
        Note C{data} as sent, after everything sent before it.

        The comparator keeps a reference to C{data} (no copy) until its echo is
        all back, or until a fault makes it moot.
        """
        if data and self.fault is None:
            self._pending.append(data)
        self.sent += len(data)

    def receive(self, data: bytes) -> Fault | None:
        """
        Compare the next received bytes with those sent at the same offsets.

        @return: The fault, if the echo is now known to be wrong (then and
            afterwards: once there is a fault, later data is ignored).
        """
        while data and self.fault is None:
            if not self._pending:
                self.fault = RunsPast(self.matched)
                break
            oldest = self._pending[0]
            count = min(len(oldest) - self._start, len(data))
            sent = oldest[self._start : self._start + count]
            received = data[:count]
            if sent != received:
                at = _first_difference(sent, received)
                self.matched += at
                self.fault = Differs(self.matched, sent[at], received[at])
                break
            self.matched += count
            self._start += count
            data = data[count:]
            if self._start == len(oldest):
                self._pending.popleft()
                self._start = 0
        if self.fault is not None:
            self._pending.clear()
        return self.fault
