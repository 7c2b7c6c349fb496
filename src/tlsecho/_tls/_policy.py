"""
The OpenSSL side of a TLS policy: which groups and ciphers the linked OpenSSL
has, and L{apply_policy}, which configures a context for a resolved
L{TLSPolicy <tlsecho._settings._resolution.TLSPolicy>}.

Importing this module provides the linked OpenSSL to the settings layer
(L{tlsecho._settings._tls_library}), so that L{tlsecho.TLSSettings} refuses a cipher
string, group or ticket key setting this OpenSSL cannot honour when it is made.
"""

from __future__ import annotations

import functools

from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from .._settings import _tls_library
from .._settings._errors import ConfigurationError
from .._settings._profiles import PROFILE_GROUPS
from .._settings._resolution import TLSPolicy
from ._openssl_internals import Unavailable, check_ticket_keys_settable, set_groups

__all__ = ["apply_policy", "available_groups"]

_OPENSSL_VERSIONS = {
    TLSVersion.TLSv1_0: SSL.TLS1_VERSION,
    TLSVersion.TLSv1_1: SSL.TLS1_1_VERSION,
    TLSVersion.TLSv1_2: SSL.TLS1_2_VERSION,
    TLSVersion.TLSv1_3: SSL.TLS1_3_VERSION,
}


@functools.cache
def available_groups() -> tuple[str, ...]:
    """
    The profile's groups the linked OpenSSL has (X25519MLKEM768 needs 3.5 or
    later), most preferred first: each is tried on a scratch context.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    return tuple(name for name in PROFILE_GROUPS if set_groups(context, name))


def _selected(ciphers: str) -> list[str]:
    """
    The TLS 1.2-and-below ciphers OpenSSL selects from C{ciphers}, in order.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        raise ConfigurationError(
            "--ciphers",
            f"OpenSSL knows no cipher in {ciphers!r} "
            "(see 'openssl ciphers -v' for the names)",
        ) from None
    names = SSL.Connection(context, None).get_cipher_list()
    return [name for name in names if not name.startswith("TLS_")]


def apply_policy(context: SSL.Context, policy: TLSPolicy) -> None:
    """
    Configure a new context for C{policy}, with the options every tlsecho
    context has: no compression, no renegotiation, server cipher preference.

    Twisted's L{CertificateOptions} already sets versions, the TLS 1.2 cipher
    list, no compression and server preference; this adds what it cannot.
    """
    context.set_min_proto_version(_OPENSSL_VERSIONS[policy.min_tls])
    context.set_max_proto_version(_OPENSSL_VERSIONS[policy.max_tls])
    context.set_options(
        SSL.OP_NO_COMPRESSION
        | SSL.OP_CIPHER_SERVER_PREFERENCE
        # Renegotiation is a denial-of-service vector, and TLS 1.3 dropped it.
        | SSL.OP_NO_RENEGOTIATION
    )
    if policy.security_level is not None and policy.ciphers:
        # Twisted set the list without the level (its cipher objects drop it).
        context.set_cipher_list(
            f"{policy.ciphers}:@SECLEVEL={policy.security_level}".encode("ascii")
        )
    context.set_tls13_ciphersuites(policy.tls13_suites.encode("ascii"))
    if not set_groups(context, policy.groups):
        raise ConfigurationError(
            "--groups", f"OpenSSL does not support the groups {policy.groups}"
        )


def _version_text() -> str:
    """The linked OpenSSL's version text, such as C{"OpenSSL 3.5.0 8 Apr 2025"}."""
    return SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")


def _ticket_keys_unsettable() -> str | None:
    """Why this build cannot set session-ticket keys, or L{None} if it can."""
    try:
        check_ticket_keys_settable()
    except Unavailable as e:
        return str(e)
    return None


_tls_library.provide(
    _tls_library.TLSLibrary(
        name=_version_text,
        select_ciphers=_selected,
        # Looked up when called, so that a test can stand in for the probe.
        available_groups=lambda: available_groups(),
        ticket_keys_unsettable=_ticket_keys_unsettable,
    )
)
