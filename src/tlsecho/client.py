"""
C{tlsecho client HOST:PORT} (or C{unix:PATH}): check a TLS echo server the way
C{openssl s_client} would, with clear answers.

It connects first, then sends standard input as it arrives (a line at a time from
a terminal), checks the echo byte for byte as it comes back (stopping at the first
byte that differs or comes past what it sent, so a server cannot make it buffer),
and writes the echo to standard output as it is checked.  Once standard input is
over and its whole echo came back, it closes the connection cleanly.  It stops
reading standard input while more than 1 MiB awaits its echo, so memory stays
bounded whatever the input and the server do.  Exit status: 0 echo intact; 1 echo
differed or the connection dropped; 2 usage or configuration error; 3 could not
connect; 4 TLS handshake or certificate verification failed.  Every error is one
line on standard error.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from cryptography import x509

from ._app._client_args import EXIT_USAGE, PROG, UNIX_SERVERNAME, build_parser
from ._app._client_report import (
    Resumption,
    chain_printer,
    handshake_reporter,
    reporter,
)
from ._app._input import InputReader
from ._net._echoclient import echo, echo_stream
from ._net._echostream import EchoStreamProtocol
from ._net._endpoints import (
    client_endpoint,
    parse_address,
    parse_unix_address,
    unix_client_endpoint,
)
from ._net._listen import is_loopback_host
from ._settings._devcert import check_development_files, development_ca_path
from ._settings._errors import ConfigurationError, ConnectionDropped, EchoError, Surface
from ._settings._material import Material
from ._settings._options import Side, options_for
from ._settings._pem import load_ca_certificates
from ._settings._profiles import Profile
from ._settings._reference_name import reference_name
from ._settings._tls_settings import TLSSettings, VerifyMode
from ._tls._client_creator import client_creator, keep_session

__all__ = ["main"]

_INTERRUPTED = "interrupted before the exchange ended"

#: What the second connection of --resume sends (standard input went to the first).
RESUME_PROBE = b"tlsecho --resume probe\n"


def _development_trust(host: str, args: argparse.Namespace) -> list[x509.Certificate]:
    """
    The development CA, if connecting to loopback with no --ca and it exists.

    @raise ConfigurationError: if others could have planted it or can read its
        key (L{check_development_files}).
    """
    path = development_ca_path()
    if args.ca or not is_loopback_host(host) or not path.exists():
        return []
    check_development_files(path.parent, server=False)
    try:
        return list(load_ca_certificates(path, "development CA"))
    except ConfigurationError:
        return []


#: What a server says when it refuses a client certificate that verified: a
#: tlsecho server whose --allow-* rules do not match sends bad_certificate;
#: others send certificate_unknown or access_denied (the RFC 8446 alert for it).
_REFUSED_US = {
    "the peer rejected our certificate (bad certificate)",
    "the peer rejected our certificate (certificate unknown)",
    "the peer denied access (access denied)",
}


async def _run(
    reactor: Any,
    args: argparse.Namespace,
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: IO[str],
) -> None:
    try:
        path = parse_unix_address(args.address)
        if path is None:
            host, port = parse_address(args.address)
        else:
            host, port = UNIX_SERVERNAME, 0
        given = {
            option.field: getattr(args, option.field) for option in options_for(Side.CLIENT)
        }
        # As browsers do, SSLKEYLOGFILE in the environment turns the key log on.
        given["keylog_file"] = (
            given["keylog_file"] or os.environ.get("SSLKEYLOGFILE") or None
        )
        settings = TLSSettings.from_strings(**given)
        servername = args.servername or host
        # Refuse a name that cannot be checked here, naming the option it came from.
        reference_name(servername, "--servername" if args.servername else "HOST:PORT")
        # A UNIX socket is on this machine: the development CA is trusted as for
        # loopback (it signs only for localhost and loopback addresses).
        development = _development_trust(host, args)
        material = Material.load(settings)
        creator = client_creator(
            settings, servername, development, material, resumable=args.resume
        )
    except ConfigurationError as e:
        if e.flag == "--keylog-file" and not args.keylog_file:
            reason = e.reason_for(Surface.COMMAND_LINE)
            e = ConfigurationError("SSLKEYLOGFILE", reason, e.path)
        stderr.write(f"{PROG}: {e.for_surface(Surface.COMMAND_LINE)}\n")
        raise SystemExit(EXIT_USAGE) from None
    verifying = settings.verify_for(Side.CLIENT) is not VerifyMode.NONE
    if not verifying and not settings.pins:
        stderr.write(
            f"{PROG}: warning: --verify none: the server's certificate and name "
            "are NOT checked; anyone could be answering\n"
        )
    if settings.profile is Profile.OLD:
        stderr.write(
            f"{PROG}: warning: --profile old: TLS 1.0 and 1.1 and legacy ciphers "
            "are offered, at OpenSSL security level 0; for testing legacy servers "
            "only\n"
        )
    if settings.keylog_file is not None:
        stderr.write(
            f"{PROG}: warning: writing TLS secrets to {settings.keylog_file}; "
            "anyone who reads it can decrypt this connection\n"
        )
    for warning in material.crl_warnings(development):
        stderr.write(f"{PROG}: warning: {warning}\n")
    if path is not None:
        where = f"unix:{path}"
        endpoint = unix_client_endpoint(reactor, path, creator, timeout=args.timeout)
    else:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        endpoint = client_endpoint(reactor, host, port, creator, timeout=args.timeout)
    # Our own I/O failures (not the server's doing) end the exchange; a broken
    # standard output (a reader that went away) exits 1 quietly, as before.
    broken_pipe = False

    def write_out(data: bytes) -> None:
        nonlocal broken_pipe
        try:
            stdout.write(data)
            stdout.flush()
        except OSError as e:
            broken_pipe = isinstance(e, BrokenPipeError)
            protocol.abort_with(ConnectionDropped(f"cannot write standard output: {e}"))

    def read_failed(reason: str) -> None:
        protocol.abort_with(ConnectionDropped(f"cannot read standard input: {reason}"))

    protocol = EchoStreamProtocol(
        on_handshake=handshake_reporter(
            reporter(stderr, where) if args.verbose else None,
            chain_printer(stderr, verifying) if args.show_certs else None,
        ),
        on_echo=write_out,
        clock=reactor,
        timeout=args.timeout,
    )

    def interrupted() -> None:
        protocol.abort_with(ConnectionDropped(_INTERRUPTED))

    reader = InputReader(reactor, stdin, protocol, on_error=read_failed)
    # Ctrl-C or SIGTERM stop the reactor, which drops the connection: say so.
    trigger = reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    connection = "" if not args.resume else "first connection: "
    try:
        await echo_stream(endpoint, reader, protocol, reactor=reactor, timeout=args.timeout)
        if args.resume:
            connection = "second connection: "
            resumption = Resumption()
            offered = keep_session(creator)
            on_handshake = handshake_reporter(
                reporter(stderr, where) if args.verbose else None, resumption
            )
            await echo(endpoint, RESUME_PROBE, reactor, args.timeout, on_handshake)
            if not offered:
                resumption.resumed, resumption.version = False, "no session to offer"
            stderr.write(f"{PROG}: {resumption.words()}\n")
    except EchoError as e:
        if broken_pipe:
            raise SystemExit(1) from None
        reason = e.reason
        if material.key is not None and e.exit_status == 4 and reason in _REFUSED_US:
            reason = f"not authorized by the server ({reason})"
        stderr.write(f"{PROG}: {connection}{reason} (server {servername!r} at {where})\n")
        raise SystemExit(e.exit_status) from None
    finally:
        reactor.removeSystemEventTrigger(trigger)


def main(
    argv: Sequence[str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[str] | None = None,
) -> NoReturn:
    """
    Run C{tlsecho client} with C{argv} (the process arguments by default) and
    exit with its status.
    """
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    args = build_parser().parse_args(argv)
    streams = (
        # No standard input at all (closed by the caller) is an empty one.
        stdin or (sys.stdin.buffer if sys.stdin is not None else io.BytesIO()),
        stdout or sys.stdout.buffer,
        stderr or sys.stderr,
    )
    ended: list[bool] = []

    async def run(reactor: Any) -> None:
        try:
            await _guarded(reactor, args, *streams)
        finally:
            ended.append(True)

    try:
        react(lambda reactor: ensureDeferred(run(reactor)))
    except SystemExit as e:
        if not ended and not e.code:
            # The reactor stopped first: Ctrl-C or SIGTERM, not an intact echo.
            streams[2].write(f"{PROG}: {_INTERRUPTED}\n")
            raise SystemExit(1) from None
        raise


async def _guarded(
    reactor: Any,
    args: argparse.Namespace,
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: IO[str],
) -> None:
    """
    Run the client; anything unforeseen is still one line, never a traceback.
    """
    try:
        await _run(reactor, args, stdin, stdout, stderr)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BrokenPipeError:
        raise SystemExit(1) from None
    except Exception as e:
        stderr.write(f"{PROG}: unexpected error: {type(e).__name__}: {e}\n")
        raise SystemExit(1) from None
