"""
The cost of one echo in the TLS layer alone: in memory, no sockets, no reactor.

Each path is a TLS 1.3 server (ECDSA P-256, AES-128-GCM) echoing what it
decrypts.  The client's records (one 64-byte record per echo by default) are
made beforehand, so the time measured is only the server's: one record in
(decrypt), one record out (encrypt) and whatever the layer adds around the two.

Paths:
  - C{ssl}: the standard library's C{ssl.SSLObject} with two C{MemoryBIO}s,
    what asyncio uses (its own OpenSSL, the system's).
  - C{pyopenssl}: a pyOpenSSL C{Connection} through its public calls
    (C{bio_write}, C{recv} until C{WantReadError}, C{send}, C{bio_read}).
  - C{twisted}: Twisted's C{TLSMemoryBIOProtocol} and an echo protocol.
  - C{tlsecho-pyopenssl}: tlsecho's transport on pyOpenSSL's public calls.
  - C{tlsecho}: tlsecho's transport (lean record layer) and an echo protocol.

Run: C{python -m bench.transport [--echoes N] [--size BYTES] [--repeat R]}.
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols import tls as upstream

from bench.certs import CertFiles, write_certificates
from tlsecho import TLSSettings
from tlsecho._tls import _tlsprotocol
from tlsecho._tls._openssl_internals import _records
from tlsecho._tls._server_creator import server_creator
from tlsecho._tls._tlsprotocol import unbuffered_write


class _Echo(Protocol):
    """Echo each read with one unbuffered write, as tlsecho's echo does."""

    _write: Callable[[bytes], object] | None = None

    def dataReceived(self, data: bytes) -> None:
        write = self._write
        if write is None:
            write = self._write = unbuffered_write(self.transport)
        write(data)


class _Sink(StringTransport):
    """A transport that only counts what is written (no growing buffer)."""

    written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)


def _client_context(files: CertFiles) -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.load_verify_locations(str(files.ca))
    context.set_verify(SSL.VERIFY_PEER)
    return context


def _handshake(client: SSL.Connection, feed_server: Callable[[bytes], bytes]) -> None:
    """Run the handshake: C{feed_server} takes client bytes, returns server bytes."""
    outgoing = b""
    for _ in range(20):
        try:
            client.do_handshake()
        except SSL.WantReadError:
            pass
        else:
            if not outgoing:
                break
        outgoing = _drain(client)
        answer = feed_server(outgoing) if outgoing else b""
        if answer:
            client.bio_write(answer)
    for _ in range(3):  # read the tickets
        try:
            client.recv(1)
        except SSL.WantReadError:
            break


def _drain(connection: SSL.Connection) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(connection.bio_read(2**16))
        except SSL.WantReadError:
            return b"".join(chunks)


def _records_from(client: SSL.Connection, echoes: int, size: int) -> list[bytes]:
    payload = b"x" * size
    made = []
    for _ in range(echoes):
        client.send(payload)
        made.append(_drain(client))
    return made


def _twisted_path(files: CertFiles, factory_type: type[Any]) -> Callable[[int, int], float]:
    def run(echoes: int, size: int) -> float:
        creator = server_creator(
            TLSSettings(certificate=files.chain, private_key=files.key)
        )
        factory = factory_type(creator, False, Factory.forProtocol(_Echo), Clock())
        server = factory.buildProtocol(None)
        sink = _Sink()
        server.makeConnection(sink)
        client = SSL.Connection(_client_context(files), None)
        client.set_connect_state()
        client.set_tlsext_host_name(b"localhost")
        collected: list[bytes] = []
        sink.write = collected.append  # type: ignore[method-assign,assignment]

        def feed(data: bytes) -> bytes:
            server.dataReceived(data)
            out = b"".join(collected)
            collected.clear()
            return out

        _handshake(client, feed)
        records = _records_from(client, echoes, size)
        sink.write = lambda data: None  # type: ignore[method-assign]
        receive = server.dataReceived
        start = time.perf_counter()
        for record in records:
            receive(record)
        return time.perf_counter() - start

    return run


def _pyopenssl_path(files: CertFiles) -> Callable[[int, int], float]:
    def run(echoes: int, size: int) -> float:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.use_certificate_chain_file(str(files.chain))
        context.use_privatekey_file(str(files.key))
        server = SSL.Connection(context, None)
        server.set_accept_state()
        client = SSL.Connection(_client_context(files), None)
        client.set_connect_state()

        def feed(data: bytes) -> bytes:
            server.bio_write(data)
            with contextlib.suppress(SSL.WantReadError):
                server.do_handshake()
            return _drain(server)

        _handshake(client, feed)
        records = _records_from(client, echoes, size)
        start = time.perf_counter()
        for record in records:
            server.bio_write(record)
            while True:
                try:
                    data = server.recv(2**14)
                except SSL.WantReadError:
                    break
                server.send(data)
                _drain(server)
        return time.perf_counter() - start

    return run


def _ssl_path(files: CertFiles) -> Callable[[int, int], float]:
    def run(echoes: int, size: int) -> float:
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(files.chain, files.key)
        client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_context.load_verify_locations(files.ca)
        s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
        server = server_context.wrap_bio(s_in, s_out, server_side=True)
        client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
        for _ in range(10):
            for side in (client, server):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        records = []
        for _ in range(echoes):
            client.write(b"x" * size)
            records.append(c_out.read())
        start = time.perf_counter()
        for record in records:
            s_in.write(record)
            while True:
                try:
                    data = server.read(2**14)
                except ssl.SSLWantReadError:
                    break
                server.write(data)
                s_out.read()
        return time.perf_counter() - start

    return run


def _with_public_records(run: Callable[[int, int], float]) -> Callable[[int, int], float]:
    def public(echoes: int, size: int) -> float:
        saved = list(_records._choice)
        _records._choice[:] = [False]
        try:
            return run(echoes, size)
        finally:
            _records._choice[:] = saved

    return public


def main(argv: list[str] | None = None) -> None:
    """Measure each path and print µs per echo (median of the repeats)."""
    parser = argparse.ArgumentParser(prog="python -m bench.transport")
    parser.add_argument("--echoes", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        files = write_certificates(Path(directory))
        lean = _twisted_path(files, _tlsprotocol.TLSFactory)
        paths = {
            "ssl": _ssl_path(files),
            "pyopenssl": _pyopenssl_path(files),
            "twisted": _twisted_path(files, upstream.TLSMemoryBIOFactory),
            "tlsecho-pyopenssl": _with_public_records(lean),
            "tlsecho": lean,
        }
        results = {}
        for name, run in paths.items():
            times = [run(args.echoes, args.size) for _ in range(args.repeat)]
            results[name] = statistics.median(times) / args.echoes * 1e6
            print(f"{name:<18} {results[name]:6.2f} µs per echo", flush=True)
        print(
            f"tlsecho / twisted: {results['tlsecho'] / results['twisted']:.2f}x time;"
            f" tlsecho / ssl: {results['tlsecho'] / results['ssl']:.2f}x time"
        )


if __name__ == "__main__":
    main()
