"""
Client-side TLS from L{TLSSettings}: a verifying client creator, plus what
tlsecho adds per connection (diagnosis of failed verification, SPKI pins, the
OCSP staple request and check).

The context comes from Twisted's L{CertificateOptions} like the server's (see
L{tlsecho._tls._server_creator}).  The server's name is checked by tlsecho's own verify
callback, not by Twisted's C{ClientTLSOptions}, and fails closed
(L{tlsecho._tls._server_checks}), with OpenSSL's own host check as a second gate
(L{tlsecho._tls._openssl_internals}); the reference name is normalised once
(L{tlsecho._settings._reference_name}) and used for SNI and for both name checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from .._settings._material import Material
from .._settings._options import Side
from .._settings._reference_name import ReferenceName, reference_name
from .._settings._tls_settings import TLSSettings, VerifyMode
from ._contexts import TrustRoot, finish, options_for
from ._openssl_internals import (
    expect_peer_name,
    send_bad_certificate_on_refusal,
    session_reused,
)
from ._refusals import register_trust
from ._server_checks import HandshakeCheck, NameCheck, PinCheck, check_staple, fingerprint

__all__ = ["client_creator", "keep_session", "resumed"]


@implementer(IOpenSSLClientConnectionCreator)
class _ClientCreator:
    """
    Client TLS: the settings' context, SNI, and, when verifying, the name
    checks; plus what tlsecho adds per connection: diagnosis of failed
    verification, SPKI pins, and the OCSP staple request.
    """

    def __init__(
        self,
        options: Any,
        settings: TLSSettings,
        trust: TrustRoot | None,
        reference: ReferenceName,
    ):
        self._options = options
        self._settings = settings
        self._trust = trust
        self._reference = reference
        #: The last connection made, with its name check (for L{keep_session}).
        self._last: tuple[SSL.Connection, NameCheck | None] | None = None
        #: The session to offer, with the fingerprint of the leaf it approved.
        self._offer: tuple[SSL.Session, bytes | None] | None = None

    def keep_session(self) -> bool:
        """
        Offer the last connection's TLS session on the next connections, if
        that connection's certificate passed every check (the name check, for
        this creator's one reference name, approved the very leaf it holds).

        Call it once the connection exchanged data, so that TLS 1.3 tickets,
        which arrive after the handshake, have been read.

        @return: whether there is a session to offer.
        """
        self._offer = None
        if self._last is None:
            return False
        connection, names = self._last
        session = connection.get_session()
        if session is None:
            return False
        approved = None
        if names is not None:
            leaf = connection.get_peer_certificate(as_cryptography=True)
            if names.approved is None or leaf is None:
                return False
            if names.approved != fingerprint(leaf):
                return False
            approved = names.approved
        self._offer = (session, approved)
        return True

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection: SSL.Connection = self._options.clientConnectionForTLS(tlsProtocol)
        sni = self._reference.sni
        if sni is not None:
            connection.set_tlsext_host_name(sni)
        names: NameCheck | None = None
        if self._trust is not None:
            register_trust(connection, self._trust.store)
            expect_peer_name(connection, self._reference.address or self._reference.text)
            names = NameCheck(self._reference, self._settings.pins)
            connection.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, names)
            # A leaf refused by tlsecho's own checks (key usage, pins): the
            # server hears bad_certificate, not internal_error.
            send_bad_certificate_on_refusal(connection)
        elif self._settings.pins:
            # --verify none: only the pins are checked, in the verify callback,
            # so that a refused key reaches the server as bad_certificate.
            connection.set_verify(
                SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                PinCheck(self._settings.pins),
            )
            send_bad_certificate_on_refusal(connection, over_chain_errors=True)
        if self._settings.require_ocsp_staple:
            connection.request_ocsp()
        resumed = None
        if self._offer is not None:
            session, resumed = self._offer
            connection.set_session(session)
        if names is not None or self._settings.pins:
            connection.set_info_callback(
                HandshakeCheck(tlsProtocol, names, self._settings.pins, resumed)
            )
        self._last = (connection, names)
        return connection


def client_creator(
    settings: TLSSettings,
    servername: str,
    extra_trust: Sequence[x509.Certificate] = (),
    material: Material | None = None,
    resumable: bool = False,
) -> IOpenSSLClientConnectionCreator:
    """
    The client connection creator for C{settings}, connecting to C{servername}.

    With verification (the default), the server's chain must lead to a CA in
    C{settings.ca} (or the platform's trust store when there is none) or in
    C{extra_trust}, not be revoked by C{settings.crl}, and its certificate must
    be valid for C{servername} (normalised by L{reference_name}), which is also
    sent as SNI unless it is an IP address: both service-identity and OpenSSL's
    own host check must positively accept it.  C{settings.pin_spki} pins the
    server's key on top of that, or instead of it with C{VerifyMode.NONE}, which
    otherwise checks nothing: insecure, for diagnosis only.

    @param material: The files of C{settings}, loaded; by default they are
        loaded now.
    @param resumable: Whether to ask for TLS 1.2 session tickets too, for
        L{keep_session} (TLS 1.3 always gets them).
    @raise ConfigurationError: for C{VerifyMode.OPTIONAL}, which is a server
        policy, for server-only options, for a C{servername} that is neither a
        host name nor an IP address, and for a file that cannot be loaded.
    """
    settings.check_for_client()
    reference = reference_name(servername)
    material = material or Material.load(settings)
    trust = None
    extra: dict[str, Any] = {}
    if settings.verify_for(Side.CLIENT) is VerifyMode.REQUIRED:
        trust = TrustRoot(
            list(material.trusted) + list(extra_trust),
            platform=not material.trusted,
            crls=material.crls,
        )
        extra["trustRoot"] = trust
    if resumable:
        # Twisted turns TLS 1.2 tickets off; a ticket is what another instance
        # sharing --ticket-key-file can resume.
        extra["enableSessionTickets"] = True
    options = options_for(settings, material.chain, material.key, **extra)
    context = options.getContext()
    finish(context, settings)
    if settings.require_ocsp_staple:
        context.set_ocsp_client_callback(check_staple)
    return _ClientCreator(options, settings, trust, reference)


def keep_session(creator: IOpenSSLClientConnectionCreator) -> bool:
    """
    Have a creator from L{client_creator} offer the session of its last
    connection on its next ones (see L{_ClientCreator.keep_session}).

    @return: whether it has a session to offer.
    """
    return isinstance(creator, _ClientCreator) and creator.keep_session()


def resumed(transport: Any) -> tuple[bool, str]:
    """
    Whether the TLS connection under C{transport} resumed a session, and its
    TLS version.
    """
    connection: SSL.Connection = transport.getHandle()
    return session_reused(connection), connection.get_protocol_version_name()
