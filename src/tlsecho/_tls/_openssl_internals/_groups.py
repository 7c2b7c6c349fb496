"""
The key exchange groups of a context, set through pyOpenSSL's private cffi
binding (C{OpenSSL._util.lib}).
"""

from __future__ import annotations

from OpenSSL import SSL

__all__ = ["set_groups"]


def set_groups(context: SSL.Context, groups: str) -> bool:
    """
    Limit the key exchange of C{context} to C{groups} (OpenSSL's list syntax,
    e.g. C{"X25519MLKEM768:X25519:P-256"}).

    OpenSSL call: C{SSL_CTX_set1_curves_list} (the old name of
    C{SSL_CTX_set1_groups_list}, which cryptography 50 does not bind), on the
    C{SSL_CTX*} pyOpenSSL holds privately (C{Context._context}).  Why below the
    API: pyOpenSSL (26.4) has only C{set_tmp_ecdh}, which allows a single curve
    and no hybrid groups.  If the binding is gone, this raises at context
    construction (nothing starts).  Removed by: a public C{Context.set_groups}
    in pyOpenSSL (pyca/cryptography#10797 asked for the binding).

    @return: whether OpenSSL took the list; if not (the caller refuses the
        option, or probes the next group), nothing is left on OpenSSL's error
        queue for a later call to trip over.
    """
    from OpenSSL._util import lib

    if lib.SSL_CTX_set1_curves_list(context._context, groups.encode("ascii")) == 1:
        return True
    lib.ERR_clear_error()
    return False
