"""
The command line of C{tlsecho client}: L{build_parser}, from the option table
(L{tlsecho._settings._options}) plus the client's own --servername, --verbose,
--show-certs, --resume and --timeout.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .._settings._options import Side, options_for

__all__ = ["EXIT_USAGE", "PROG", "UNIX_SERVERNAME", "build_parser"]

PROG = "tlsecho client"
EXIT_USAGE = 2
#: The name verified on a C{unix:} target without --servername: the socket is on
#: this machine, like a loopback address.
UNIX_SERVERNAME = "localhost"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """
    The parser for C{tlsecho client}'s options.
    """
    parser = _Parser(
        prog=PROG,
        description="Connect to a TLS echo server, send standard input as it "
        "arrives (a line at a time from a terminal) and check the echo as it comes "
        "back, writing it to standard output; close once standard input ends "
        "(Ctrl-D) and its whole echo came back.",
        epilog="Exit status: 0 echo intact; 1 echo differed or connection dropped; "
        "2 usage or configuration error; 3 could not connect; "
        "4 TLS handshake or certificate verification failed.",
    )
    parser.add_argument(
        "address",
        metavar="HOST:PORT|unix:PATH",
        help="server to connect to: a host (or [IPv6] address) and port, or unix: "
        "and the path of a UNIX socket (verified as localhost unless --servername; "
        "like a loopback address, it trusts the development CA without --ca)",
    )
    for option in options_for(Side.CLIENT):
        help = option.help_for(Side.CLIENT)
        if option.is_switch:
            parser.add_argument(
                option.flag, dest=option.field, action="store_true", help=help
            )
        elif option.repeatable:
            parser.add_argument(
                option.flag,
                dest=option.field,
                action="append",
                default=[],
                metavar=option.type.metavar,
                help=f"{help} (repeatable)",
            )
        else:
            parser.add_argument(
                option.flag, dest=option.field, metavar=option.type.metavar, help=help
            )
    parser.add_argument(
        "--servername",
        metavar="NAME",
        help=f"SNI and the name to verify [HOST; {UNIX_SERVERNAME} for unix:PATH]",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="report the negotiated version, cipher, group, ALPN and certificate on stderr",
    )
    parser.add_argument(
        "--show-certs",
        action="store_true",
        help="print the certificates the server sent on stderr: subject, issuer, "
        "SANs, validity, key, SPKI pin, and the CA the chain was verified to",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="connect twice, the second time resuming the first TLS session, and "
        "report on stderr whether the server resumed it (the exit status is the "
        "echo's, on both connections)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="the longest wait: to connect and complete the TLS handshake, and for "
        "an echo that is owed (or the server's close after ours) to come back; "
        "while nothing is owed, the connection stays open [30]",
    )
    return parser
