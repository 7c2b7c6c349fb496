"""
The data path of a TLS connection through memory BIOs: OpenSSL's calls made
straight through the cffi binding pyOpenSSL uses, with return codes rather than
exceptions and one reusable buffer.

A L{RecordLayer} wraps one pyOpenSSL C{Connection} made with memory BIOs
(C{Connection(context, None)}) and offers the four moves a transport makes:
L{feed} the bytes the network brought, L{read} the plaintext they make, L{write}
plaintext, and L{take} what OpenSSL wants sent.  The lean one
(L{_BindingRecords}) calls C{BIO_write}, C{SSL_read}, C{SSL_write},
C{SSL_get_error}, C{SSL_pending}, C{BIO_get_mem_data} (the pending count,
C{BIO_CTRL_INFO}) and C{BIO_read} on the C{SSL*} and C{BIO*} pyOpenSSL holds privately
(C{Connection._ssl}, C{_into_ssl}, C{_from_ssl}).  What it saves, per record,
against pyOpenSSL's public calls (C{bio_write}, C{recv}, C{send},
C{bio_read}): an exception raised and caught for every "nothing more to read"
(C{WantReadError}), a fresh zeroed buffer per call, and a second C{recv} and
C{bio_read} to find out there is nothing more.

Only the success and "wants more input" outcomes are decided here.  Any other
outcome is handed to pyOpenSSL's own C{Connection._raise_ssl_error}, with the
same C{SSL*} and return code and OpenSSL's error queue untouched, so the
exception (C{ZeroReturnError} for a close_notify, C{SysCallError} for an
unexpected end, C{Error} with OpenSSL's reasons, a callback's stored
exception) is exactly the one pyOpenSSL's public call would have raised.

C{cryptography} 50's binding has neither C{SSL_read_ex}/C{SSL_write_ex} nor
C{BIO_ctrl_pending}; C{SSL_read}/C{SSL_write} return the same information as an
C{int} for buffers below 2 GiB (ours are 64 KiB), and on a memory BIO
C{BIO_get_mem_data} is the pending count.

L{record_layer} gives the lean layer when everything it needs is there, else
L{_PublicRecords}, the same moves on pyOpenSSL's public API (the slow path,
which keeps tlsecho working if a pyOpenSSL upgrade changes what the lean one
relies on; C{tests/test_openssl_internals.py} fails, naming what changed).
C{TLSECHO_TLS_TRANSPORT=pyopenssl} in the environment chooses the public one
(for the benchmark's comparison, and to rule the lean one out when
investigating).  Removed by: pyOpenSSL offering allocation-free, exception-free
C{recv_into}/C{bio_read_into} variants.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

from OpenSSL._util import ffi, lib
from OpenSSL.SSL import TLS_METHOD, Connection, Context, WantReadError

__all__ = [
    "REQUIRED",
    "TRANSPORT_VARIABLE",
    "RecordLayer",
    "lean_unavailable",
    "record_layer",
    "use_lean",
]

#: The environment variable that picks the data path: C{lean} (the default) or
#: C{pyopenssl} (pyOpenSSL's public calls).
TRANSPORT_VARIABLE = "TLSECHO_TLS_TRANSPORT"

#: What the lean layer needs: functions and constants of the binding, and
#: private attributes of a pyOpenSSL Connection.
REQUIRED = {
    "binding": (
        "BIO_write",
        "BIO_read",
        "BIO_get_mem_data",
        "SSL_read",
        "SSL_write",
        "SSL_get_error",
        "SSL_pending",
        "SSL_ERROR_WANT_READ",
    ),
    "connection": (
        "_ssl",
        "_into_ssl",
        "_from_ssl",
        "_raise_ssl_error",
        "_handle_bio_errors",
    ),
}

#: The most plaintext one TLS record carries; one SSL_read gives at most this.
_RECORD = 2**14

#: The reusable buffer's size: enough for a record, and for most flights.
_BUFFER = 2**16


class RecordLayer(Protocol):
    """
    The data path of one TLS connection over memory BIOs.
    """

    def feed(self, data: bytes) -> None:
        """Give OpenSSL C{data} received from the network."""

    def read(self) -> bytes | None:
        """
        The next plaintext, or L{None} when OpenSSL needs more input first.

        @raise OpenSSL.SSL.Error: as pyOpenSSL's C{recv} would (a
            C{ZeroReturnError} once the peer's close_notify is read).
        """

    def write(self, data: bytes) -> int | None:
        """
        Encrypt up to one record of C{data} (at most 16 KiB); how much was
        taken, or L{None} when OpenSSL needs input first (a handshake).

        @raise OpenSSL.SSL.Error: as pyOpenSSL's C{send} would.
        """

    def take(self) -> bytes:
        """Everything OpenSSL has to send, emptying its buffer (maybe C{b""})."""

    def input_ended(self) -> None:
        """
        The network's end is about to be put in the BIO
        (C{Connection.bio_shutdown}): the next L{read} must go to OpenSSL.
        """


def lean_unavailable() -> str | None:
    """
    Why the lean layer cannot be used in this process, or L{None} if it can.
    """
    missing = [name for name in REQUIRED["binding"] if not hasattr(lib, name)]
    probe = Connection(Context(TLS_METHOD), None)
    missing += [
        f"Connection.{name}"
        for name in REQUIRED["connection"]
        if getattr(probe, name, None) is None
    ]
    if missing:
        return "pyOpenSSL's binding lacks " + ", ".join(missing)
    return None


def record_layer(connection: Connection) -> RecordLayer:
    """
    The data path for C{connection} (made with memory BIOs): the lean one
    unless it is unavailable or the environment asks for pyOpenSSL's public
    calls (L{TRANSPORT_VARIABLE}).
    """
    if use_lean():
        return _BindingRecords(connection)
    return _PublicRecords(connection)


def use_lean() -> bool:
    """
    Whether connections get the lean layer: decided once per process, from
    L{TRANSPORT_VARIABLE} and L{lean_unavailable}.
    """
    if not _choice:
        wanted = os.environ.get(TRANSPORT_VARIABLE, "lean").strip().lower()
        _choice.append(wanted != "pyopenssl" and lean_unavailable() is None)
    return _choice[0]


_choice: list[bool] = []


class _Buffers(threading.local):
    """One reusable buffer per thread (cffi releases the GIL inside calls)."""

    def __init__(self) -> None:
        self.buffer: Any = _uncleared("char[]", _BUFFER)


_uncleared = ffi.new_allocator(should_clear_after_alloc=False)
_buffers = _Buffers()
_NULL = ffi.NULL
_unpack = ffi.unpack
_WANT_READ = getattr(lib, "SSL_ERROR_WANT_READ", 2)


class _BindingRecords:
    """
    L{RecordLayer} through the binding's calls on pyOpenSSL's C{SSL*} and
    memory C{BIO*}s.
    """

    __slots__ = ("_buffer", "_connection", "_input", "_into", "_out", "_ssl")

    def __init__(self, connection: Connection) -> None:
        self._connection: Any = connection
        self._ssl = connection._ssl
        self._into = connection._into_ssl
        self._out = connection._from_ssl
        if self._into is None or self._out is None:
            raise TypeError("the connection was not made with memory BIOs")
        self._buffer = _buffers.buffer
        #: Whether OpenSSL may have input it has not read: received bytes left
        #: in the BIO, or its end (C{Connection.bio_shutdown}) not yet met.
        self._input = True

    def input_ended(self) -> None:
        self._input = True

    def feed(self, data: bytes) -> None:
        self._input = True
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)
        written = lib.BIO_write(self._into, data, len(data))
        if written != len(data):  # a memory BIO takes everything or fails
            self._connection._handle_bio_errors(self._into, written)
            raise MemoryError("OpenSSL's memory BIO refused received bytes")

    def read(self) -> bytes | None:
        if not self._input:
            return None  # OpenSSL emptied the BIO: another SSL_read would say so
        ssl = self._ssl
        result = lib.SSL_read(ssl, self._buffer, _BUFFER)
        if result > 0:
            data: bytes = _unpack(self._buffer, result)
            # One read takes a whole record (our buffer holds any record, and
            # nothing in pyOpenSSL's reach turns on read-ahead): with the BIO
            # empty, nothing is left to read until more bytes come.
            if lib.BIO_get_mem_data(self._into, _NULL) <= 0 and lib.SSL_pending(ssl) <= 0:
                self._input = False
            return data
        if lib.SSL_get_error(ssl, result) == _WANT_READ:
            self._input = False
            return None
        self._connection._raise_ssl_error(ssl, result)
        raise WantReadError()  # not reached: pyOpenSSL raised above

    def write(self, data: bytes) -> int | None:
        if len(data) > _RECORD:
            data = data[:_RECORD]
        if type(data) is not bytes:
            data = bytes(data)
        ssl = self._ssl
        result = lib.SSL_write(ssl, data, len(data))
        if result > 0:
            return int(result)
        if lib.SSL_get_error(ssl, result) == _WANT_READ:
            return None
        self._connection._raise_ssl_error(ssl, result)
        raise WantReadError()  # not reached: pyOpenSSL raised above

    def take(self) -> bytes:
        out = self._out
        pending = lib.BIO_get_mem_data(out, _NULL)
        if pending <= 0:
            return b""
        buffer = self._buffer if pending <= _BUFFER else _uncleared("char[]", pending)
        got = lib.BIO_read(out, buffer, pending)
        if got <= 0:
            return b""
        data: bytes = _unpack(buffer, got)
        return data


class _PublicRecords:
    """
    L{RecordLayer} on pyOpenSSL's public API (the slow path).
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def feed(self, data: bytes) -> None:
        self._connection.bio_write(data)

    def read(self) -> bytes | None:
        try:
            return self._connection.recv(_RECORD)
        except WantReadError:
            return None

    def write(self, data: bytes) -> int | None:
        try:
            return self._connection.send(data[:_RECORD])
        except WantReadError:
            return None

    def input_ended(self) -> None:
        pass  # every read goes to OpenSSL

    def take(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self._connection.bio_read(_BUFFER)
            except WantReadError:
                break
            chunks.append(chunk)
            if len(chunk) < _BUFFER:
                break
        return b"".join(chunks)
