"""
What server and client contexts share, on top of Twisted's
L{CertificateOptions}: the options for an identity under a policy, the finish
every context gets (the full policy, the key log), the trust root with CRLs,
and the key log writer.  L{tlsecho._tls._server_creator} makes the server's creators,
L{tlsecho._tls._client_creator} the client's.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL, crypto

# IOpenSSLTrustRoot is the documented type of the trustRoot= arguments, but
# Twisted only defines it in this private module.
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions
from twisted.logger import Logger
from zope.interface import implementer

from .._settings._errors import ConfigurationError, Surface
from .._settings._files import check_keylog_file
from .._settings._pem import TLSPrivateKey
from .._settings._profiles import INTERMEDIATE_CIPHERS, is_legacy
from .._settings._tls_settings import TLSSettings
from ._policy import apply_policy

__all__ = ["TrustRoot", "add_crls", "finish", "options_for"]

_log = Logger()


class _KeyLog:
    """
    Append TLS secrets in the NSS key log format to a file (for Wireshark).

    The file is made mode 0600; an existing one is checked on every write (on
    the open file, so what is checked is what is written to): once others may
    read or write it, or another user owns it, no more secrets go in, and one
    error says why.
    """

    def __init__(self, path: Path, option: str = "--keylog-file"):
        self._path = path
        self._option = option
        self._lock = threading.Lock()
        self._refused: str | None = None

    def __call__(self, connection: SSL.Connection, line: bytes) -> None:
        try:
            with self._lock:
                descriptor = os.open(
                    self._path,
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                    0o600,
                )
                with os.fdopen(descriptor, "ab") as f:
                    try:
                        check_keylog_file(self._path, self._option, os.fstat(descriptor))
                    except ConfigurationError as e:
                        # Said as the server's command line and log readers spell it.
                        refused = e.for_surface(Surface.COMMAND_LINE)
                        if refused != self._refused:
                            self._refused = refused
                            _log.error(
                                "{error}; not writing TLS secrets",
                                error=refused,
                                event="keylog.error",
                            )
                        return
                    self._refused = None
                    f.write(line + b"\n")
        except Exception:
            _log.failure(
                "while writing the TLS key log {path}",
                path=str(self._path),
                event="keylog.error",
            )


@implementer(IOpenSSLTrustRoot)
class TrustRoot:
    """
    Trust the given CA certificates, and the platform's store if asked to;
    check certificates against the given CRLs.
    """

    def __init__(
        self,
        certificates: Sequence[x509.Certificate],
        platform: bool,
        crls: Sequence[x509.CertificateRevocationList] = (),
    ):
        self._certificates = tuple(certificates)
        self._platform = platform
        self._crls = tuple(crls)

    def _addCACertsToContext(self, context: SSL.Context) -> None:
        if self._platform:
            context.set_default_verify_paths()
        store = context.get_cert_store()
        assert store is not None
        self._fill(store)

    def _fill(self, store: crypto.X509Store) -> None:
        for certificate in self._certificates:
            store.add_cert(crypto.X509.from_cryptography(certificate))
        add_crls(store, self._crls)

    def store(self) -> crypto.X509Store:
        """
        A new certificate store holding this trust, for diagnosis.
        """
        store = crypto.X509Store()
        if self._platform:
            # The same places SSL_CTX_set_default_verify_paths reads.
            paths = ssl.get_default_verify_paths()
            cafile, capath = paths.openssl_cafile, paths.openssl_capath
            if os.path.isfile(cafile) or os.path.isdir(capath):
                store.load_locations(
                    cafile if os.path.isfile(cafile) else None,
                    capath if os.path.isdir(capath) else None,
                )
        self._fill(store)
        return store


def add_crls(
    store: crypto.X509Store, crls: Sequence[x509.CertificateRevocationList]
) -> None:
    """
    Check the leaf certificate against C{crls} (the CRL of its issuer must be
    among them).
    """
    if not crls:
        return
    for crl in crls:
        store.add_crl(crl)
    store.set_flags(crypto.X509StoreFlags.CRL_CHECK)


def options_for(
    settings: TLSSettings,
    chain: Sequence[x509.Certificate] = (),
    key: TLSPrivateKey | None = None,
    **extra: Any,
) -> CertificateOptions:
    """
    L{CertificateOptions} for an identity (if any) under the settings' policy.
    """
    policy = settings.policy
    # Below TLS 1.2 (--profile old) Twisted must be told it is meant, or it
    # disables TLS 1.0 and 1.1 with options that outlast the minimum version.
    minimum = "insecurelyLowerMinimumTo" if is_legacy(policy.min_tls) else "raiseMinimumTo"
    arguments: dict[str, Any] = {
        minimum: policy.min_tls,
        "lowerMaximumSecurityTo": policy.max_tls,
        # With TLS 1.2 off the list does not matter, but Twisted wants one.
        "acceptableCiphers": AcceptableCiphers.fromOpenSSLCipherString(
            policy.ciphers or ":".join(INTERMEDIATE_CIPHERS)
        ),
        "acceptableProtocols": [p.encode() for p in settings.alpn] or None,
        **extra,
    }
    if key is not None:
        # pyOpenSSL takes cryptography objects directly; its own X509 and PKey
        # types are deprecated for this.
        arguments.update(
            privateKey=key, certificate=chain[0], extraCertChain=list(chain[1:])
        )
    return CertificateOptions(**arguments)


def finish(context: SSL.Context, settings: TLSSettings) -> None:
    """
    What every context gets on top of L{CertificateOptions}: the full policy
    and the key log.
    """
    apply_policy(context, settings.policy)
    if settings.keylog_file is not None:
        context.set_keylog_callback(_KeyLog(settings.keylog_file))
