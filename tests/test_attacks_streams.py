"""
Attacks by a server that sends more than was asked for (see L{hostile.streams}):
the real C{tlsecho client}, and the library's C{echo()}, against TLS servers on
loopback that flood, overrun, alter or stall the echo.  The client must stop at
the first wrong byte with one line naming its offset, and its memory must stay
bounded whatever the server sends.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
import pytest_twisted
from twisted.internet import reactor

from tlsecho import (
    EchoMismatch,
    TLSSettings,
    client_creator,
    client_endpoint,
    echo,
)
from tlsecho._app._input import CHUNK
from tlsecho._net._echostream import MAX_OUTSTANDING

from _processes import TLSECHO, run_client
from conftest import TLSFiles
from hostile.streams import (
    Behaviour,
    StreamServer,
    altered_echo,
    echo_then_extra,
    endless,
    slow_then_stall,
    swallow,
)

PAYLOAD = b"hello, tlsecho\n"
#: What the client may use, whatever the server sends (issue 10, item 7).
MEMORY_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class WatchedRun:
    """How a C{tlsecho client} run ended, and the most memory it held."""

    returncode: int
    stdout: bytes
    stderr: str
    peak_rss: int
    elapsed: float

    @property
    def line(self) -> str:
        """The one line the client wrote on stderr (asserting there is exactly one)."""
        lines = self.stderr.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.stderr}"
        assert "Traceback" not in self.stderr
        return lines[0]


def _run_watched(address: str, *arguments: str, payload: bytes = PAYLOAD) -> WatchedRun:
    """
    Run C{tlsecho client} against C{address}, sampling its resident memory every
    10 ms; a client past L{MEMORY_LIMIT} is killed (by its PID) at once, so that a
    successful attack cannot eat the machine.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        [TLSECHO, "client", *arguments, address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watched = psutil.Process(process.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                rss = watched.memory_info().rss
            except psutil.Error:
                return  # exited
            peak = max(peak, rss)
            if rss > MEMORY_LIMIT:
                process.kill()
                return
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = process.communicate(payload, timeout=120)
    finally:
        done.set()
        sampler.join(10)
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return WatchedRun(
        process.returncode,
        stdout,
        stderr.decode("utf-8", "replace"),
        peak,
        time.monotonic() - started,
    )


@pytest.fixture
def serve(tls_files: TLSFiles) -> Iterator[type[StreamServer]]:
    """Start hostile servers with the trusted server certificate; close them after."""
    started: list[StreamServer] = []

    class Server(StreamServer):
        def __init__(self, behaviour: Behaviour):
            super().__init__(tls_files.server_cert, tls_files.server_key, behaviour)
            started.append(self)

    yield Server
    for server in started:
        server.close()


# The real client -----------------------------------------------------------------------


@pytest.mark.subprocess
def test_endless_echo_stops_at_first_byte_past_payload_with_bounded_memory(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """A server that streams the payload over and over without end makes the client
    exit 1 at the first byte past what it sent, well within --timeout and 64 MiB."""
    server = serve(endless(PAYLOAD))
    run = _run_watched(server.address, "--ca", str(tls_files.ca), "--timeout", "20")
    assert run.peak_rss < MEMORY_LIMIT, f"client reached {run.peak_rss} bytes"
    assert run.returncode == 1, run.stderr
    assert run.line == (
        f"tlsecho client: echo runs past what was sent at byte {len(PAYLOAD)}: only "
        f"{len(PAYLOAD)} bytes were sent (server '127.0.0.1' at {server.address})"
    )
    # It stopped at that byte, not at the timeout: it never waits for this server.
    assert run.elapsed < 20, run.elapsed
    assert PAYLOAD.startswith(run.stdout)


@pytest.mark.subprocess
def test_endless_garbage_stops_at_first_differing_byte_with_bounded_memory(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """A server that streams other bytes without end makes the client exit 1 at byte 0,
    well within --timeout and 64 MiB."""
    server = serve(endless(b"\x1b[2J"))
    run = _run_watched(server.address, "--ca", str(tls_files.ca), "--timeout", "20")
    assert run.peak_rss < MEMORY_LIMIT, f"client reached {run.peak_rss} bytes"
    assert run.returncode == 1, run.stderr
    assert run.line == (
        "tlsecho client: echo differs from what was sent at byte 0: sent 0x68, "
        f"received 0x1b (server '127.0.0.1' at {server.address})"
    )
    assert run.elapsed < 20, run.elapsed
    assert run.stdout == b""


@pytest.mark.subprocess
@pytest.mark.parametrize("separately", [False, True], ids=["same-record", "later-record"])
def test_extra_bytes_after_a_correct_echo_exit_1(
    serve: type[StreamServer], tls_files: TLSFiles, separately: bool
) -> None:
    """A server that echoes correctly and then appends bytes (in the same TLS record,
    or in a later one) makes the client exit 1 naming the first extra byte."""
    server = serve(echo_then_extra(len(PAYLOAD), b"EXTRA", separately))
    run = _run_watched(server.address, "--ca", str(tls_files.ca), "--timeout", "20")
    assert run.returncode == 1, run.stderr
    assert f"echo runs past what was sent at byte {len(PAYLOAD)}:" in run.line
    assert run.elapsed < 20, run.elapsed
    assert PAYLOAD.startswith(run.stdout)


@pytest.mark.subprocess
def test_one_changed_byte_exits_1_naming_its_offset(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """A server that echoes with one byte changed at offset 7 makes the client exit 1
    naming byte 7, the byte sent and the byte received."""
    server = serve(altered_echo(len(PAYLOAD), offset=7))
    run = _run_watched(server.address, "--ca", str(tls_files.ca), "--timeout", "20")
    assert run.returncode == 1, run.stderr
    assert run.line == (
        "tlsecho client: echo differs from what was sent at byte 7: sent 0x74, "
        f"received 0x54 (server '127.0.0.1' at {server.address})"
    )
    assert run.elapsed < 20, run.elapsed
    assert PAYLOAD.startswith(run.stdout)


@pytest.mark.subprocess
def test_slow_echo_that_stalls_times_out_with_progress(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """A server that echoes 5 bytes slowly and then stalls makes the client exit 1 at
    --timeout, saying how much of the echo came back intact."""
    server = serve(slow_then_stall(len(PAYLOAD), keep=5))
    run = _run_watched(server.address, "--ca", str(tls_files.ca), "--timeout", "3")
    assert run.returncode == 1, run.stderr
    assert run.line == (
        "tlsecho client: timed out after 3s waiting for the echo: 5 of "
        f"{len(PAYLOAD)} bytes came back, all matching "
        f"(server '127.0.0.1' at {server.address})"
    )
    # The timeout, plus a generous allowance for starting a Python process.
    assert 3 <= run.elapsed < 3 + 15, run.elapsed
    assert run.peak_rss < MEMORY_LIMIT


@pytest.mark.subprocess
def test_whole_echo_then_stall_times_out_saying_the_echo_was_intact(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """A server that echoes everything, slowly, and then never answers the client's
    close makes the client exit 1 at --timeout, saying the echo itself was intact."""
    server = serve(slow_then_stall(len(PAYLOAD), keep=len(PAYLOAD)))
    run = _run_watched(server.address, "--ca", str(tls_files.ca), "--timeout", "3")
    assert run.returncode == 1, run.stderr
    assert run.line == (
        "tlsecho client: timed out after 3s waiting for the server to close the "
        f"connection, after the whole echo ({len(PAYLOAD)} bytes) came back intact "
        f"(server '127.0.0.1' at {server.address})"
    )
    assert 3 <= run.elapsed < 3 + 15, run.elapsed


@pytest.mark.subprocess
def test_intact_echo_still_exits_0(serve: type[StreamServer], tls_files: TLSFiles) -> None:
    """The hostile server's plumbing is sound: with nothing appended, the echo passes."""
    server = serve(echo_then_extra(len(PAYLOAD), b"", separately=False))
    result = run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD)
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr.decode()


@pytest.mark.subprocess
@pytest.mark.parametrize("read", [True, False], ids=["discards", "never-reads"])
def test_server_that_echoes_nothing_cannot_make_the_client_read_all_its_input(
    serve: type[StreamServer], tls_files: TLSFiles, read: bool
) -> None:
    """Against a server that swallows (or never reads) what it is sent, a client fed an
    endless standard input reads about 1 MiB of it, stays small, and exits 1 at
    --timeout saying none of it came back."""
    server = serve(swallow(read))
    process = subprocess.Popen(
        [TLSECHO, "client", "--ca", str(tls_files.ca), "--timeout", "3", server.address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    feeder_stdin = process.stdin
    written = 0
    cap = 4 * MEMORY_LIMIT  # an unbounded client would take it all

    def feed() -> None:
        nonlocal written
        chunk = bytes(65536)
        try:
            while written < cap:
                feeder_stdin.write(chunk)
                feeder_stdin.flush()
                written += len(chunk)
            feeder_stdin.close()
        except (BrokenPipeError, ValueError):
            pass  # the client exited

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    watched = psutil.Process(process.pid)
    peak = 0
    started = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - started < 60:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                break
            if peak > MEMORY_LIMIT:
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        with contextlib.suppress(OSError):
            feeder_stdin.close()
        feeder.join(10)
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert peak < MEMORY_LIMIT, f"client reached {peak} bytes"
    assert process.returncode == 1, stderr
    assert re.fullmatch(
        r"tlsecho client: timed out after 3s waiting for the echo: none of the \d+ bytes "
        rf"sent came back \(server '127\.0\.0\.1' at {re.escape(server.address)}\)\n",
        stderr,
    ), stderr
    sent = int(re.search(r"none of the (\d+) bytes", stderr).group(1))  # type: ignore[union-attr]
    # What awaits its echo is capped at 1 MiB, plus the one 64 KiB chunk in flight.
    assert sent <= MAX_OUTSTANDING + CHUNK, sent
    # What left the pipe: that, and at most the pipe's own buffer besides.
    assert written <= MAX_OUTSTANDING + CHUNK + 2 * 1024 * 1024, written


# The library ---------------------------------------------------------------------------


def _settings(tls_files: TLSFiles) -> TLSSettings:
    return TLSSettings(ca=(tls_files.ca,))


async def _library_echo(tls_files: TLSFiles, server: StreamServer) -> BaseException:
    """Run C{echo()} against C{server}; return what it failed with."""
    endpoint = client_endpoint(
        reactor, "127.0.0.1", server.port, client_creator(_settings(tls_files), "localhost")
    )
    try:
        await echo(endpoint, PAYLOAD, reactor=reactor, timeout=20)
    except Exception as e:
        return e
    raise AssertionError("echo() succeeded against a hostile server")


@pytest_twisted.ensureDeferred
async def test_library_echo_fails_on_endless_stream_at_first_byte_past_payload(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """echo() against an endless stream fails with EchoMismatch at the first byte past
    the payload, without waiting for its timeout."""
    started = time.monotonic()
    error = await _library_echo(tls_files, serve(endless(PAYLOAD)))
    assert type(error) is EchoMismatch
    assert error.offset == len(PAYLOAD)
    assert error.reason == (
        f"echo runs past what was sent at byte {len(PAYLOAD)}: only "
        f"{len(PAYLOAD)} bytes were sent"
    )
    assert time.monotonic() - started < 20


@pytest_twisted.ensureDeferred
async def test_library_echo_fails_on_changed_byte_with_its_offset(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """echo() against an echo with byte 3 changed fails with EchoMismatch at offset 3."""
    error = await _library_echo(tls_files, serve(altered_echo(len(PAYLOAD), offset=3)))
    assert type(error) is EchoMismatch
    assert error.offset == 3


@pytest_twisted.ensureDeferred
async def test_library_echo_fails_on_extra_bytes_after_the_echo(
    serve: type[StreamServer], tls_files: TLSFiles
) -> None:
    """echo() against a correct echo followed, later, by extra bytes fails with
    EchoMismatch at the first extra byte."""
    error = await _library_echo(
        tls_files, serve(echo_then_extra(len(PAYLOAD), b"!", separately=True))
    )
    assert type(error) is EchoMismatch
    assert error.offset == len(PAYLOAD)
