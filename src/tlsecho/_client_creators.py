"""
Client-side TLS from L{TLSSettings}: Twisted's verifying client creator, plus
what tlsecho adds per connection (diagnosis of failed verification, SPKI pins,
the OCSP staple request and check).

The context comes from Twisted's L{CertificateOptions} like the server's (see
L{tlsecho._creators}); Twisted's L{ClientTLSOptions} then checks the server's
host name with C{service_identity} and sends SNI, exactly what
L{optionsForClientTLS} does, but keeping the context within reach.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import idna
from cryptography import x509
from OpenSSL import SSL

# ClientTLSOptions is the creator optionsForClientTLS returns, but Twisted only
# defines it in this private module.
from twisted.internet._sslverify import ClientTLSOptions
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ._contexts import TrustRoot, finish, options_for
from ._diagnosis import record_refusal, register_trust
from ._errors import ConfigurationError, PeerRejected
from ._identity import describe_identity, spki_sha256
from ._revocation import check_ocsp_staple
from ._settings import TLSSettings, VerifyMode

__all__ = ["client_creator"]

_log = Logger()


@implementer(IOpenSSLClientConnectionCreator)
class _ClientCreator:
    """
    Client TLS: Twisted's verifying creator (or, insecurely, a plain one that
    still sends SNI), plus what tlsecho adds per connection: diagnosis of
    failed verification, SPKI pins, and the OCSP staple request.
    """

    def __init__(
        self,
        make_connection: Callable[[TLSMemoryBIOProtocol], SSL.Connection],
        settings: TLSSettings,
        trust: TrustRoot | None,
        servername: bytes | None = None,
    ):
        self._make_connection = make_connection
        self._settings = settings
        self._trust = trust
        self._servername = servername

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = self._make_connection(tlsProtocol)
        if self._servername is not None:
            connection.set_tlsext_host_name(self._servername)
        if self._trust is not None:
            register_trust(connection, self._trust.store)
        if self._settings.require_ocsp_staple:
            connection.request_ocsp()
        if self._settings.pins:
            connection.set_info_callback(_PinCheck(tlsProtocol, self._settings.pins))
        return connection


class _PinCheck:
    """
    An info callback that, when the handshake is done, fails the connection
    unless the server's key matches one of the SPKI pins.
    """

    def __init__(self, tlsProtocol: TLSMemoryBIOProtocol, pins: frozenset[bytes]):
        self._protocol: TLSMemoryBIOProtocol | None = tlsProtocol
        self._pins = pins

    def __call__(self, connection: SSL.Connection, where: int, ret: int) -> None:
        if not where & SSL.SSL_CB_HANDSHAKE_DONE or self._protocol is None:
            return
        protocol, self._protocol = self._protocol, None
        try:
            leaf = connection.get_peer_certificate(as_cryptography=True)
            if leaf is None or spki_sha256(leaf) not in self._pins:
                shown = describe_identity(leaf) if leaf is not None else "no certificate"
                protocol.failVerification(
                    Failure(
                        PeerRejected(
                            f"certificate pin mismatch: the server's key ({shown}) "
                            "matches no --pin-spki"
                        )
                    )
                )
        except Exception:
            _log.failure("while checking the server's key pin")
            protocol.abortConnection()


def _check_staple(connection: SSL.Connection, staple: bytes, data: object) -> bool:
    """
    The OCSP client callback (for --require-ocsp-staple): accept the handshake
    only with a good, current staple signed for the server's certificate.
    """
    try:
        # The verified chain ends at the trusted root, which servers do not
        # send: the issuer of a certificate issued by the root is only there.
        chain = (
            connection.get_verified_chain(as_cryptography=True)
            or connection.get_peer_cert_chain(as_cryptography=True)
            or []
        )
        leaf = connection.get_peer_certificate(as_cryptography=True) or (
            chain[0] if chain else None
        )
        if leaf is None:
            record_refusal(connection, "no server certificate to check the OCSP staple for")
            return False
        issuers = [c for c in chain if c.subject == leaf.issuer and c != leaf]
        problem = check_ocsp_staple(staple, leaf, issuers[0] if issuers else None)
        if problem is not None:
            record_refusal(connection, problem)
            return False
        return True
    except Exception:
        _log.failure("while checking the stapled OCSP response")
        return False


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
    C{extra_trust}, not be revoked by C{settings.crl}, and its certificate must
    be valid for C{servername}, which is also sent as SNI unless it is an IP
    address.  C{settings.pin_spki} pins the server's key on top of that, or
    instead of it with C{VerifyMode.NONE}, which otherwise checks nothing:
    insecure, for diagnosis only.

    @raise ConfigurationError: for C{VerifyMode.OPTIONAL}, which is a server
        policy, and for server-only options.
    """
    verify = settings.verify or VerifyMode.REQUIRED
    if verify is VerifyMode.OPTIONAL:
        raise ConfigurationError(
            "--verify", "optional is a server policy; the client takes required or none"
        )
    if (
        settings.sni
        or settings.sni_strict
        or settings.ocsp_response
        or settings.allowed
        or settings.ticket_key_file
    ):
        raise ConfigurationError(
            "--sni/--allow-*/--ocsp-response/--ticket-key-file",
            "are server options, not client options",
        )
    trust = None
    extra: dict[str, Any] = {}
    if verify is VerifyMode.REQUIRED:
        trust = TrustRoot(
            list(settings.trusted) + list(extra_trust),
            platform=not settings.trusted,
            crls=settings.crls,
        )
        extra["trustRoot"] = trust
    options = options_for(settings, settings.chain, settings.key, **extra)
    context = options.getContext()
    finish(context, settings)
    if settings.require_ocsp_staple:
        context.set_ocsp_client_callback(_check_staple)
    if trust is None:
        # The same IDNA 2008 / UTS 46 encoding Twisted's verifying client uses.
        sni = None if _is_ip_address(servername) else idna.encode(servername, uts46=True)
        return _ClientCreator(options.clientConnectionForTLS, settings, None, sni)
    verifying = ClientTLSOptions(options.clientConnectionForTLS, servername)
    return _ClientCreator(verifying.clientConnectionForTLS, settings, trust)
