"""
Put TLS on top of ordinary Twisted endpoints.

A server endpoint description (C{tcp:}, C{tcp6:}, C{unix:}, C{systemd:},
C{haproxy:} ...) is read once into a L{ListenDescription} (which says whether
it asks for the PROXY protocol, and what it listens on), its transport is
built by Twisted, and it is wrapped with tlsecho's TLS transport
(L{tls_server_endpoint}, like Twisted's C{wrapServerTLS}); a client endpoint is a
L{HostnameEndpoint} wrapped with L{tls_client_endpoint}.  That transport sends
handshake flights of any size whole (see L{tlsecho._tls._tlsprotocol}).  TLS is always
the outer layer, so behind HAProxy the PROXY header is read before TLS starts.
"""

from __future__ import annotations

import re
from typing import Any, cast

from twisted.internet.endpoints import (
    HostnameEndpoint,
    UNIXClientEndpoint,
    serverFromString,
)
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)

from .._settings._errors import ConfigurationError
from .._tls._tlsendpoints import tls_client_endpoint, tls_server_endpoint
from ._eager import eager_endpoint
from ._listen import ListenDescription
from ._proxy import TrustedSources, proxy_endpoint

__all__ = [
    "client_endpoint",
    "parse_address",
    "parse_unix_address",
    "plain_server_endpoint",
    "read_description",
    "require_loopback",
    "server_endpoint",
    "transport_endpoint",
    "unix_client_endpoint",
]

#: Endpoint types that already carry TLS: tlsecho adds TLS itself.
_TLS_TYPES = {"ssl", "tls", "le", "lets"}


def read_description(description: str, option: str = "--listen") -> ListenDescription:
    """
    Read a server endpoint description (see L{ListenDescription}).

    @param option: The option the description came from, for errors.
    @raise ConfigurationError: naming C{option}, for a description that
        cannot be read (a lone backslash at its end, C{haproxy:} twice).
    """
    try:
        return ListenDescription.parse(description)
    except ValueError as e:
        raise ConfigurationError(
            option, f"bad endpoint description {description!r}: {e}"
        ) from None


def plain_server_endpoint(
    reactor: Any, description: str, option: str = "--listen"
) -> IStreamServerEndpoint:
    """
    Parse a server endpoint description without TLS, checking it is valid.

    @param option: The option the description came from, for errors.
    @raise ConfigurationError: naming C{option}, for a description Twisted
        cannot parse or that already asks for TLS.
    """
    listen = _checked(read_description(description, option), option)
    return _parsed(reactor, description, listen, option)


def transport_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    The transport a C{--listen} description names below any C{haproxy:}
    wrapper, without TLS: what the main process of C{--workers} binds, and
    what L{server_endpoint} puts the PROXY and TLS layers on.

    @raise ConfigurationError: as L{plain_server_endpoint}.
    """
    return _transport(reactor, read_description(description))


def _transport(reactor: Any, listen: ListenDescription) -> IStreamServerEndpoint:
    """
    L{transport_endpoint}, for a description already read.
    """
    return _parsed(reactor, listen.inner, _checked(listen, "--listen"), "--listen")


def _checked(listen: ListenDescription, option: str) -> ListenDescription:
    """
    C{listen}, unless Twisted would accept it but tlsecho cannot serve it: a
    type that already carries TLS, a TCP port out of range.
    """
    if listen.kind.strip() in _TLS_TYPES:
        raise ConfigurationError(
            option,
            f"{listen.text!r}: tlsecho adds TLS itself; describe the plain "
            "transport instead (for example tcp:8443)",
        )
    _check_port(listen, option)
    return listen


def _parsed(
    reactor: Any, text: str, listen: ListenDescription, option: str
) -> IStreamServerEndpoint:
    """
    The endpoint Twisted makes of C{text} (all or part of C{listen}).
    """
    try:
        return cast(IStreamServerEndpoint, serverFromString(reactor, text))
    except (ValueError, KeyError, TypeError, IndexError) as e:
        detail = str(e) or type(e).__name__
        if isinstance(e, IndexError) and listen.kind == "systemd":
            detail = "no such socket was passed by systemd (LISTEN_FDS)"
        elif listen.kind.isdigit() and not listen.arguments:
            detail = f"{detail} (did you mean tcp:{listen.kind}?)"
        raise ConfigurationError(
            option, f"bad endpoint description {listen.text!r}: {detail}"
        ) from None


def _check_port(listen: ListenDescription, option: str) -> None:
    """
    Refuse a TCP port that is not a number (Twisted would say so in Python's
    words) or out of range (rather than fail with an OverflowError when binding).
    """
    try:
        number = int(listen.port) if listen.port is not None else None
    except ValueError:
        raise ConfigurationError(
            option,
            f"bad endpoint description {listen.text!r}: port {listen.port!r} is not "
            "a number",
        ) from None
    if number is not None and not 0 <= number <= 65535:
        raise ConfigurationError(
            option,
            f"bad endpoint description {listen.text!r}: port {number} is out of "
            "range 0-65535",
        )


def server_endpoint(
    reactor: Any,
    description: str,
    creator: IOpenSSLServerConnectionCreator,
    inner: IStreamServerEndpoint | None = None,
    proxy_trusted: TrustedSources | None = None,
) -> IStreamServerEndpoint:
    """
    A TLS server endpoint: the endpoint C{description} names, with TLS on top.

    @param reactor: The reactor to listen with.
    @param description: A Twisted server endpoint description such as
        C{"tcp:8443:interface=127.0.0.1"} or C{"haproxy:tcp:8443"}; never C{ssl:}.
    @param creator: From L{tlsecho.server_creator}.
    @param inner: The endpoint to use below any C{haproxy:} prefix instead of
        the one the description names (a socket inherited from the main
        process, say).
    @param proxy_trusted: Who may send PROXY headers on a C{haproxy:}
        listener; loopback and UNIX sockets if L{None}.
    @raise ConfigurationError: for a bad description.
    """
    listen = read_description(description)
    endpoint = eager_endpoint(inner or _transport(reactor, listen))
    if listen.proxied:
        # The PROXY header comes first, TLS after it.
        endpoint = proxy_endpoint(endpoint, proxy_trusted)
    return tls_server_endpoint(creator, endpoint)


def require_loopback(description: str, why: str) -> None:
    """
    Raise a L{ConfigurationError} unless C{description} listens on loopback
    only (L{ListenDescription.is_loopback}: a UNIX socket, or TCP on an
    C{interface} that is a loopback address or C{localhost}).
    """
    if not read_description(description).is_loopback():
        raise ConfigurationError("--listen", f"{description!r} is not loopback-only: {why}")


def parse_address(text: str) -> tuple[str, int]:
    """
    Split C{HOST:PORT} (or C{[IPv6]:PORT}) into host and port.

    @raise ConfigurationError: if there is no valid port.
    """
    match = re.fullmatch(
        r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d+)|(?P<host>[^:]+):(?P<port>\d+)", text
    )
    if match is None:
        raise ConfigurationError(
            "HOST:PORT", f"expected HOST:PORT or [IPv6]:PORT, got {text!r}"
        )
    host = match.group("v6") or match.group("host")
    port = int(match.group("p6") or match.group("port"))
    if not 0 < port < 65536:
        raise ConfigurationError("HOST:PORT", f"port {port} is out of range in {text!r}")
    return host, port


def parse_unix_address(text: str) -> str | None:
    """
    The path of a C{unix:PATH} client address (everything after C{unix:},
    taken as it is), or L{None} for any other address.

    @raise ConfigurationError: if the path is empty.
    """
    if not text.startswith("unix:"):
        return None
    path = text.removeprefix("unix:")
    if not path:
        raise ConfigurationError(
            "unix:PATH", f"expected the path of a UNIX socket after unix:, got {text!r}"
        )
    return path


def client_endpoint(
    reactor: Any,
    host: str,
    port: int,
    creator: IOpenSSLClientConnectionCreator,
    timeout: float = 30.0,
) -> IStreamClientEndpoint:
    """
    A TLS client endpoint to C{host}:C{port}.

    @param creator: From L{tlsecho.client_creator}, for the name to verify.
    @param timeout: Seconds to wait for the TCP connection.
    """
    return tls_client_endpoint(
        creator, HostnameEndpoint(reactor, host, port, timeout=timeout)
    )


def unix_client_endpoint(
    reactor: Any,
    path: str,
    creator: IOpenSSLClientConnectionCreator,
    timeout: float = 30.0,
) -> IStreamClientEndpoint:
    """
    A TLS client endpoint to the UNIX socket at C{path}.

    @param creator: From L{tlsecho.client_creator}, for the name to verify.
    @param timeout: Seconds to wait for the connection.
    """
    return tls_client_endpoint(creator, UNIXClientEndpoint(reactor, path, timeout=timeout))
