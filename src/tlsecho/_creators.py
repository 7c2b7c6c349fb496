"""
Build Twisted TLS connection creators from L{TLSSettings}: the seam between the
settings and every endpoint.

The server side uses Twisted's L{CertificateOptions}; the client side uses
L{optionsForClientTLS}, which checks the server's host name with
C{service_identity} and sends SNI.  Each pyOpenSSL context is built once per
settings value, never per connection: a context that has served a connection
cannot be changed, so new settings mean a new creator.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Sequence
from typing import Any

import idna
from cryptography import x509
from OpenSSL import SSL, crypto

# IOpenSSLTrustRoot is the documented type of the trustRoot= arguments, but
# Twisted only defines it in this private module.
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, optionsForClientTLS
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from ._diagnosis import record_verify_error, register_trust
from ._errors import ConfigurationError
from ._settings import TLSSettings, VerifyMode

__all__ = ["client_creator", "server_creator"]

_log = Logger()


def _verify_callback(
    connection: SSL.Connection, certificate: crypto.X509, code: int, depth: int, ok: int
) -> bool:
    """
    OpenSSL's verify callback: keep OpenSSL's verdict, remember why it failed.

    Exceptions raised here would vanish inside OpenSSL, so all are logged.
    """
    try:
        if not ok:
            record_verify_error(connection, code, depth)
    except Exception:
        _log.failure("while recording a certificate verification error")
    return bool(ok)


@implementer(IOpenSSLTrustRoot)
class _TrustRoot:
    """
    Trust the given CA certificates, and the platform's store if asked to.
    """

    def __init__(self, certificates: Sequence[x509.Certificate], platform: bool):
        self._certificates = tuple(certificates)
        self._platform = platform

    def _addCACertsToContext(self, context: SSL.Context) -> None:
        if self._platform:
            context.set_default_verify_paths()
        store = context.get_cert_store()
        assert store is not None
        for certificate in self._certificates:
            store.add_cert(crypto.X509.from_cryptography(certificate))

    def _fill(self, store: crypto.X509Store) -> None:
        if self._platform:
            # The same places SSL_CTX_set_default_verify_paths reads.
            paths = ssl.get_default_verify_paths()
            cafile, capath = paths.openssl_cafile, paths.openssl_capath
            if os.path.isfile(cafile) or os.path.isdir(capath):
                store.load_locations(
                    cafile if os.path.isfile(cafile) else None,
                    capath if os.path.isdir(capath) else None,
                )
        for certificate in self._certificates:
            store.add_cert(crypto.X509.from_cryptography(certificate))

    def store(self) -> crypto.X509Store:
        """
        A new certificate store holding this trust, for diagnosis.
        """
        store = crypto.X509Store()
        self._fill(store)
        return store


def _certificate_options(settings: TLSSettings, **extra: Any) -> dict[str, Any]:
    """
    The L{CertificateOptions} arguments both sides share: identity, versions,
    ciphers.
    """
    options: dict[str, Any] = {
        "raiseMinimumTo": settings.min_tls,
        "lowerMaximumSecurityTo": settings.max_tls,
        "acceptableCiphers": AcceptableCiphers.fromOpenSSLCipherString(settings.ciphers),
    }
    if settings.key is not None:
        # pyOpenSSL takes cryptography objects directly; its own X509 and PKey
        # types are deprecated for this.
        options["privateKey"] = settings.key
        options["certificate"] = settings.chain[0]
        options["extraCertChain"] = list(settings.chain[1:])
    options.update(extra)
    return options


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator:
    """
    Server-side TLS for one L{TLSSettings}: one context, shared by every connection.

    @ivar settings: The settings this creator was built from.
    """

    def __init__(self, settings: TLSSettings):
        verify = settings.verify or VerifyMode.NONE
        if settings.key is None:
            raise ConfigurationError("--cert", "the server needs a certificate and key")
        if verify is not VerifyMode.NONE and not settings.trusted:
            raise ConfigurationError(
                "--verify",
                f"{verify.value} needs --ca: the CA certificates that client "
                "certificates must chain to",
            )
        self.settings = settings
        verifying = verify is not VerifyMode.NONE
        self._options = CertificateOptions(
            **_certificate_options(
                settings,
                verify=verifying,
                caCerts=(
                    [crypto.X509.from_cryptography(c) for c in settings.trusted]
                    if verifying
                    else None
                ),
                requireCertificate=verify is VerifyMode.REQUIRED,
            )
        )
        context = self._options.getContext()
        # Renegotiation is a denial-of-service vector and TLS 1.3 dropped it.
        context.set_options(SSL.OP_NO_RENEGOTIATION)
        context.set_verify(context.get_verify_mode(), _verify_callback)
        if verifying:
            # Tell clients which CAs we accept, as 'openssl s_client' shows.
            for certificate in settings.trusted:
                context.add_client_ca(certificate)

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """
        A new OpenSSL connection for an accepted client.
        """
        return self._options.serverConnectionForTLS(tlsProtocol)


def server_creator(settings: TLSSettings) -> ServerConnectionCreator:
    """
    The server connection creator for C{settings}.

    @raise ConfigurationError: if C{settings} has no certificate, or asks for
        client certificates without C{ca}.
    """
    return ServerConnectionCreator(settings)


@implementer(IOpenSSLClientConnectionCreator)
class _DiagnosedClientCreator:
    """
    Wrap Twisted's verifying client creator so that a failed verification can
    be explained (its verify callback does the host name check, so we leave it
    alone and re-verify after a failure instead).
    """

    def __init__(self, wrapped: IOpenSSLClientConnectionCreator, trust: _TrustRoot):
        self._wrapped = wrapped
        self._trust = trust

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = self._wrapped.clientConnectionForTLS(tlsProtocol)
        register_trust(connection, self._trust.store)
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class _InsecureClientCreator:
    """
    Client TLS that verifies nothing but still sends SNI: C{--verify none}.
    """

    def __init__(self, options: CertificateOptions, servername: bytes | None):
        self._options = options
        self._servername = servername

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = self._options.clientConnectionForTLS(tlsProtocol)
        if self._servername is not None:
            connection.set_tlsext_host_name(self._servername)
        return connection


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def client_creator(
    settings: TLSSettings,
    servername: str,
    extra_trust: Sequence[x509.Certificate] = (),
) -> IOpenSSLClientConnectionCreator:
    """
    The client connection creator for C{settings}, connecting to C{servername}.

    With verification (the default), the server's chain must lead to a CA in
    C{settings.ca} (or the platform's trust store when there is none) or in
    C{extra_trust}, and its certificate must be valid for C{servername}, which
    is also sent as SNI unless it is an IP address.  With
    C{VerifyMode.NONE} nothing is checked: insecure, for diagnosis only.

    @raise ConfigurationError: for C{VerifyMode.OPTIONAL}, which is a server
        policy.
    """
    verify = settings.verify or VerifyMode.REQUIRED
    if verify is VerifyMode.OPTIONAL:
        raise ConfigurationError(
            "--verify", "optional is a server policy; the client takes required or none"
        )
    if verify is VerifyMode.NONE:
        insecure = CertificateOptions(**_certificate_options(settings))
        # The same IDNA 2008 / UTS 46 encoding Twisted's verifying client uses.
        sni = None if _is_ip_address(servername) else idna.encode(servername, uts46=True)
        return _InsecureClientCreator(insecure, sni)
    trust = _TrustRoot(
        list(settings.trusted) + list(extra_trust), platform=not settings.trusted
    )
    return _DiagnosedClientCreator(
        optionsForClientTLS(
            servername,
            trustRoot=trust,
            extraCertificateOptions=_certificate_options(settings),
        ),
        trust,
    )
