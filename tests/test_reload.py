"""
Reloading the TLS configuration: on SIGHUP or when files change, new handshakes get
the new certificate, open connections go on, and a bad reload changes nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import trustme

from tlsecho import TLSSettings, server_creator
from tlsecho._tls._reload import FileWatch, ReloadingCreator

from _processes import identity, start_server
from conftest import TLSFiles, write_cert


def _context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = True
    return context


def _serial(port: int, ca: Path) -> int:
    """Connect once, echo a line, and return the served certificate's serial number."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        _context(ca).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"ping\n")
        assert tls.recv(100) == b"ping\n"
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


def _replace(source: Path, target: Path) -> None:
    """Replace ``target`` atomically with a copy of ``source`` (as ACME clients do)."""
    temporary = target.with_suffix(".new")
    temporary.write_bytes(source.read_bytes())
    temporary.chmod(0o600)
    os.replace(temporary, target)


def _second_certificate(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    directory.mkdir()
    return write_cert(ca.issue_cert("localhost", "127.0.0.1", "::1"), directory, "renewed")


def test_reload_keeps_old_creator_when_files_are_bad(tls_files: TLSFiles) -> None:
    """A reload that fails leaves the previous creator serving and counts the failure."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    creator = ReloadingCreator(server_creator(settings))
    original = creator.current
    tls_files.server_cert.write_bytes(b"not a certificate")
    assert creator.reload() is False
    assert creator.current is original
    assert (creator.reloads_ok, creator.reloads_failed) == (0, 1)


def test_reload_swaps_in_renewed_files(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A reload after the files were replaced serves the new certificate."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    creator = ReloadingCreator(server_creator(settings))
    served = creator.current.material.chain[0].serial_number
    cert, key = _second_certificate(tls_files.server_ca, tmp_path / "renewed")
    _replace(cert, tls_files.server_cert)
    _replace(key, tls_files.server_key)
    assert creator.reload() is True
    assert creator.current.material.chain[0].serial_number != served
    assert (creator.reloads_ok, creator.reloads_failed) == (1, 0)


def test_file_watch_sees_a_changed_file(tmp_path: Path) -> None:
    """FileWatch reports a change once, then not again until the next change."""
    watched = tmp_path / "cert.pem"
    watched.write_bytes(b"one")
    watch = FileWatch([watched])
    assert watch.changed() is False
    watched.write_bytes(b"two")
    assert watch.changed() is True
    assert watch.changed() is False


def test_sighup_under_load_loses_no_handshake(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Under continuous new connections, replacing the files and sending SIGHUP fails
    no handshake; new connections see the new certificate; an old one keeps echoing."""
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    port = server.port
    old_serial = _serial(port, tls_files.ca)
    long_lived = _context(tls_files.ca).wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10),
        server_hostname="localhost",
    )
    failures: list[BaseException] = []
    serials: list[int] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                serials.append(_serial(port, tls_files.ca))
            except BaseException as e:  # every failure counts
                failures.append(e)

    workers = [threading.Thread(target=load) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        cert, key = _second_certificate(tls_files.server_ca, tmp_path / "renewed")
        _replace(cert, tls_files.server_cert)
        _replace(key, tls_files.server_key)
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_for("reloaded the TLS configuration")
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(40)
    long_lived.sendall(b"still here\n")
    assert long_lived.recv(100) == b"still here\n"
    long_lived.close()
    assert failures == []
    assert old_serial in serials
    new_serials = set(serials) - {old_serial}
    assert len(new_serials) == 1
    assert _serial(port, tls_files.ca) in new_serials
    assert len(serials) > 20


def test_failed_reload_keeps_serving_the_old_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """SIGHUP with a broken certificate file logs one line and keeps the old certificate."""
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    before = _serial(server.port, tls_files.ca)
    tls_files.server_cert.write_bytes(b"garbage")
    os.kill(server.process.pid, signal.SIGHUP)
    line = server.wait_for(r"reload failed, still serving the previous configuration: .*")
    assert "--cert" in line.group(0)
    assert _serial(server.port, tls_files.ca) == before


def test_reload_interval_picks_up_changed_files(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """With --reload-interval, replaced files are served without a signal."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--reload-interval",
        "0.2",
    )
    before = _serial(server.port, tls_files.ca)
    cert, key = _second_certificate(tls_files.server_ca, tmp_path / "renewed")
    _replace(key, tls_files.server_key)
    _replace(cert, tls_files.server_cert)
    server.wait_for("reloaded the TLS configuration")
    assert _serial(server.port, tls_files.ca) != before
