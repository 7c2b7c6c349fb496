"""
OpenSSL's own host name check, set on a client connection's verify parameters
through pyOpenSSL's private cffi binding (C{OpenSSL._util.lib}).

The client checks the server's name twice, independently, so that a fault in
either check fails closed: C{service_identity} (for clear words) and OpenSSL's
C{X509_check_host}/C{X509_check_ip}, which OpenSSL runs during chain
verification once the expected name is set on the connection's verify
parameters (C{X509_VERIFY_PARAM_set1_host}/C{set1_ip}).  That is what the
standard library's C{ssl} module does for C{check_hostname}.  pyOpenSSL 26
offers no public call for it (pyca/pyopenssl#1020), so this module uses the
bindings pyOpenSSL itself uses and the connection's private C{SSL*}
(C{Connection._ssl}).  If a later pyOpenSSL or cryptography drops any of these
symbols, importing this module (and so the client) fails at once, naming them,
rather than silently connecting with one check fewer.

The flags are those of C{ssl}: no partial wildcards (C{f*o.example}), and never
the subject CN as a fallback for a certificate without subjectAltName.
"""

from __future__ import annotations

import ipaddress

from OpenSSL import SSL
from OpenSSL._util import ffi, lib

__all__ = [
    "HOSTNAME_MISMATCH",
    "IP_ADDRESS_MISMATCH",
    "REQUIRED_SYMBOLS",
    "expect_peer_name",
    "lib",
]

#: Everything this module needs from the bindings.
REQUIRED_SYMBOLS = (
    "SSL_get0_param",
    "X509_VERIFY_PARAM_set_hostflags",
    "X509_VERIFY_PARAM_set1_host",
    "X509_VERIFY_PARAM_set1_ip",
    "X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS",
    "X509_CHECK_FLAG_NEVER_CHECK_SUBJECT",
    "X509_V_ERR_HOSTNAME_MISMATCH",
    "X509_V_ERR_IP_ADDRESS_MISMATCH",
)

_missing = [name for name in REQUIRED_SYMBOLS if not hasattr(lib, name)]
if _missing:
    raise ImportError(
        "tlsecho needs OpenSSL's host check, but these bindings are missing from "
        f"pyOpenSSL/cryptography: {', '.join(_missing)}"
    )

#: The verify error codes of OpenSSL's host check.
HOSTNAME_MISMATCH: int = lib.X509_V_ERR_HOSTNAME_MISMATCH
IP_ADDRESS_MISMATCH: int = lib.X509_V_ERR_IP_ADDRESS_MISMATCH

_FLAGS = lib.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | lib.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT


def expect_peer_name(
    connection: SSL.Connection, name: str | ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    """
    Make OpenSSL's chain verification on C{connection} also require the peer's
    certificate to be valid for C{name}: a (normalised, ASCII) DNS name or an IP
    address.  A mismatch is then a verify error at depth 0
    (C{X509_V_ERR_HOSTNAME_MISMATCH} or C{X509_V_ERR_IP_ADDRESS_MISMATCH}).

    OpenSSL calls: C{SSL_get0_param}, C{X509_VERIFY_PARAM_set_hostflags} and
    C{X509_VERIFY_PARAM_set1_host} or C{set1_ip}.  Removed by: a public host
    check call in pyOpenSSL (pyca/pyopenssl#1020, PR #796).

    @raise RuntimeError: if OpenSSL does not take the name; the connection must
        then not be used.
    """
    param = lib.SSL_get0_param(connection._ssl)
    if param == ffi.NULL:
        raise RuntimeError("OpenSSL gave no verify parameters for the connection")
    lib.X509_VERIFY_PARAM_set_hostflags(param, _FLAGS)
    if isinstance(name, str):
        data = name.encode("ascii")
        if not data or b"\0" in data:
            raise RuntimeError(f"not a host name for OpenSSL's check: {name!r}")
        done = lib.X509_VERIFY_PARAM_set1_host(param, data, len(data))
    else:
        data = name.packed
        done = lib.X509_VERIFY_PARAM_set1_ip(param, data, len(data))
    if done != 1:
        raise RuntimeError(f"OpenSSL refused the name to check: {name}")
