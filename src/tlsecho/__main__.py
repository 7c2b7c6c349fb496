"""
The C{tlsecho} command (and C{python -m tlsecho}): dispatch to its subcommands
(C{client}, C{check}).

The server is not a subcommand: it runs under C{twistd -n tlsecho} or
C{twist tlsecho}, as Twisted services do.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """\
usage: tlsecho client [OPTIONS] HOST:PORT   check a TLS echo server (see --help)
       tlsecho check [--json] [OPTIONS]     check a server configuration, listen on nothing
       tlsecho --version                    versions of tlsecho, Twisted, pyOpenSSL, OpenSSL
       twist tlsecho [OPTIONS]              run the server (twist tlsecho --help)
"""


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of the C{tlsecho} console script.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "client":
        from .client import main as client_main

        client_main(args[1:])
    if args and args[0] == "check":
        from .check import main as check_main

        check_main(args[1:])
    if args and args[0] in {"--version", "-V", "version"}:
        from ._app._version import describe

        sys.stdout.write(describe() + "\n")
        raise SystemExit(0)
    if args and args[0] in {"-h", "--help", "help"}:
        sys.stdout.write(USAGE)
        raise SystemExit(0)
    what = f"unknown command {args[0]!r}" if args else "no command given"
    sys.stderr.write(f"tlsecho: {what}\n{USAGE}")
    raise SystemExit(2)


if __name__ == "__main__":
    main()
