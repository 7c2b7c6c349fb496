"""
The verify error of a certificate our verify callback refuses, set through
pyOpenSSL's private cffi binding (C{OpenSSL._util.lib}).
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL

__all__ = ["reject_verified_as_bad_certificate", "send_bad_certificate_on_refusal"]


def reject_verified_as_bad_certificate(context: SSL.Context) -> None:
    """
    Make a refusal by C{context}'s verify callback (already set with
    C{set_verify}) of a certificate OpenSSL itself found valid send the
    bad_certificate alert.

    OpenSSL's verify error is then still "ok", which it reports with the
    internal_error alert: wrong, and misleading for the peer.  OpenSSL calls:
    C{X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)} ("certificate
    rejected", sent as bad_certificate) from a C callback wrapping pyOpenSSL's
    own (its private C{Context._verify_callback}), installed with
    C{SSL_CTX_set_verify} on the private C{Context._context}.  Why below the
    API: a pyOpenSSL (26.4) verify callback can only answer yes or no.  If the
    bindings are gone, this raises at context construction (the server does
    not start).  Removed by: pyOpenSSL letting a verify callback set the error.
    """
    from OpenSSL._util import ffi, lib

    inner: Any = context._verify_callback  # pyOpenSSL's C-level wrapper of ours

    @ffi.callback("int (*)(int, X509_STORE_CTX *)")  # type: ignore[untyped-decorator]
    def verify(ok: int, store: Any) -> int:
        result: int = inner(ok, store)
        if ok and not result:
            lib.X509_STORE_CTX_set_error(store, lib.X509_V_ERR_CERT_REJECTED)
        return result

    context._tlsecho_verify_callback = verify  # type: ignore[attr-defined]  # keep it alive
    lib.SSL_CTX_set_verify(context._context, context.get_verify_mode(), verify)


def send_bad_certificate_on_refusal(
    connection: SSL.Connection, over_chain_errors: bool = False
) -> None:
    """
    Make a refusal by C{connection}'s own verify callback (already set with
    C{Connection.set_verify}) send the bad_certificate alert: of a certificate
    OpenSSL found valid, and with C{over_chain_errors} of any certificate
    (a client that does not verify the chain but pins the server's key, whose
    refusal is the pin's, not OpenSSL's C{unknown_ca}).

    The client-side twin of L{reject_verified_as_bad_certificate}; without it
    a client's refusal reaches the server as internal_error or unknown_ca.
    OpenSSL calls: C{X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)}
    from a C callback wrapping pyOpenSSL's own (its private
    C{Connection._verify_callback}), installed with C{SSL_set_verify} on the
    private C{Connection._ssl}.  If the bindings are gone, this raises when
    the connection is made (the client reports an internal error).  Removed
    by: pyOpenSSL letting a verify callback set the error.
    """
    from OpenSSL._util import ffi, lib

    inner: Any = connection._verify_callback  # pyOpenSSL's C-level wrapper of ours

    @ffi.callback("int (*)(int, X509_STORE_CTX *)")  # type: ignore[untyped-decorator]
    def verify(ok: int, store: Any) -> int:
        result: int = inner(ok, store)
        if not result and (ok or over_chain_errors):
            lib.X509_STORE_CTX_set_error(store, lib.X509_V_ERR_CERT_REJECTED)
        return result

    connection._tlsecho_verify_callback = verify  # type: ignore[attr-defined]  # keep it alive
    lib.SSL_set_verify(connection._ssl, connection.get_verify_mode(), verify)
