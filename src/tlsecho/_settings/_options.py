"""
The option table: every command-line flag and TOML key of tlsecho, declared once.

Each L{Option} row names a setting, its value type, its default, whether it may
be given several times, which side uses it (server, client or both, as TLS
settings; or the server's service) and its help text.  The server's
C{usage.Options}, the client's C{argparse} parser, the TOML schema, the
construction of L{tlsecho.TLSSettings} and
L{tlsecho._settings._service_options.ServiceOptions}, the reload file list and the
reference tables in the docs are all derived from L{OPTIONS}; a test checks
that every surface lists every row.  The value types are in
L{tlsecho._settings._values}; the service's rows in
L{tlsecho._settings._service_rows}.  This module imports neither Twisted nor OpenSSL.
"""

from __future__ import annotations

from ._service_rows import SERVICE_ROWS
from ._values import (
    NAMES,
    PATH,
    PROFILE,
    SWITCH,
    TEXT,
    TLS_VERSION,
    VERIFY,
    Option,
    Side,
)

__all__ = ["OPTIONS", "Option", "Side", "option_named", "options_for"]

_S, _C, _B = Side.SERVER, Side.CLIENT, Side.BOTH

#: Every option of tlsecho, in the order of C{--help}.
OPTIONS: tuple[Option, ...] = (
    # The TLS settings (TLSSettings fields).
    Option(
        "cert",
        PATH,
        "PEM file: the certificate, then its intermediates, in order; or a "
        "PKCS#12 bundle (key, certificate and intermediates; no --key).",
        _B,
        field="certificate",
        is_file=True,
        client_help="client certificate for mutual TLS (PEM, leaf first; or a "
        "PKCS#12 bundle with its key)",
    ),
    Option(
        "key",
        PATH,
        "PEM private key file [the --cert file].",
        _B,
        field="private_key",
        is_file=True,
    ),
    Option(
        "key-passphrase-file",
        PATH,
        "File holding the passphrase of an encrypted --key or PKCS#12 --cert "
        "(never give it on argv).",
        _B,
        is_file=True,
    ),
    Option(
        "ca",
        PATH,
        "PEM file of CA certificates that client certificates must chain to.",
        _B,
        repeatable=True,
        is_file=True,
        client_help="trust roots; default: the platform's trust store, plus the "
        "development CA for loopback hosts",
    ),
    Option(
        "verify",
        VERIFY,
        "Client certificates: none, optional or required [none].",
        _B,
        client_help="required, or none (insecure) [required]",
    ),
    Option(
        "profile",
        PROFILE,
        "TLS policy after Mozilla's guidelines: intermediate (TLS 1.2+1.3), "
        "modern (TLS 1.3 only), or old (TLS 1.0-1.3 and legacy ciphers, for "
        "testing legacy peers; warned about) [intermediate].",
        _B,
    ),
    Option(
        "ciphers",
        TEXT,
        "OpenSSL cipher string narrowing the profile's TLS 1.2 ciphers.",
        _B,
    ),
    Option(
        "tls13-ciphers",
        NAMES,
        "TLS 1.3 suites narrowing the profile's TLS_AES_128_GCM_SHA256:"
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256, in order of "
        "preference.",
        _B,
    ),
    Option(
        "groups",
        NAMES,
        "Key exchange groups narrowing the profile's X25519MLKEM768:X25519:"
        "prime256v1:secp384r1 (less any the linked OpenSSL lacks), in order of "
        "preference.",
        _B,
    ),
    Option(
        "min-tls",
        TLS_VERSION,
        "Lowest TLS version: 1.2 or 1.3 (1.0, 1.1 with --profile old) [from the profile].",
        _B,
    ),
    Option("max-tls", TLS_VERSION, "Highest TLS version: 1.2 or 1.3 [1.3].", _B),
    Option(
        "allow-cn",
        TEXT,
        "Authorize client certificates with this subject common name.",
        _S,
        repeatable=True,
    ),
    Option(
        "allow-dns",
        TEXT,
        "Authorize client certificates with this DNS subject alt name.",
        _S,
        repeatable=True,
    ),
    Option(
        "allow-uri",
        TEXT,
        "Authorize client certificates with this URI subject alt name (a SPIFFE ID).",
        _S,
        repeatable=True,
    ),
    Option(
        "allow-spki",
        TEXT,
        "Authorize client certificates whose SHA-256 SPKI pin is this (base64 or hex).",
        _S,
        repeatable=True,
    ),
    Option(
        "pin-spki",
        TEXT,
        "The server key's SHA-256 SPKI pin (base64 or hex): checked on top of the "
        "chain, or instead of it with --verify none.",
        _C,
        repeatable=True,
    ),
    Option(
        "sni",
        TEXT,
        "NAME=CERT[:KEY]: serve CERT to clients asking for NAME (exact or *.domain).",
        _S,
        repeatable=True,
    ),
    Option(
        "sni-strict",
        SWITCH,
        "Refuse SNI names no certificate is for (unrecognized_name).",
        _S,
        default=False,
    ),
    Option(
        "alpn",
        TEXT,
        "Application protocol to offer with ALPN, most preferred first.",
        _B,
        repeatable=True,
    ),
    Option(
        "crl",
        PATH,
        "Certificate revocation list (PEM or DER) checked for client certificates.",
        _B,
        repeatable=True,
        is_file=True,
        client_help="certificate revocation list (PEM or DER) for the server's chain",
    ),
    Option(
        "ocsp-response",
        PATH,
        "DER OCSP response for --cert, stapled when a client asks.",
        _S,
        is_file=True,
    ),
    Option(
        "require-ocsp-staple",
        SWITCH,
        "Fail unless the server staples a good OCSP response for its certificate.",
        _C,
        default=False,
    ),
    Option(
        "keylog-file",
        PATH,
        "Append TLS secrets (NSS key log format) to this file. Debugging only.",
        _B,
        client_help="append TLS secrets to FILE for Wireshark [$SSLKEYLOGFILE]",
    ),
    Option(
        "ticket-key-file",
        PATH,
        "80 bytes ('openssl rand 80') of session-ticket keys, shared by the "
        "processes that should resume each other's TLS sessions [per process].",
        _S,
        is_file=True,
    ),
    # The service (ServiceOptions fields).
    *SERVICE_ROWS,
)


def option_named(name: str) -> Option:
    """
    The row for C{name} (a flag without dashes, or a TOML key with either
    spelling).

    @raise KeyError: if there is none.
    """
    wanted = name.replace("_", "-")
    for option in OPTIONS:
        if option.name == wanted:
            return option
    raise KeyError(name)


def options_for(side: Side) -> tuple[Option, ...]:
    """
    The rows C{side} takes, in table order (C{Side.SERVER} includes the service).
    """
    if side is Side.SERVER:
        return tuple(o for o in OPTIONS if o.side & (Side.SERVER | Side.SERVICE))
    return tuple(o for o in OPTIONS if o.side & side)
