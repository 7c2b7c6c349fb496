"""
Build the server's Twisted TLS connection creator from L{TLSSettings} and the
L{Material} loaded from its files: the seam between the settings and every
server endpoint.  L{tlsecho._tls._client_creator} makes the client's;
L{tlsecho._tls._contexts} holds what both share; L{tlsecho._tls._sni} picks the
certificate for the name a client asks for.

Each pyOpenSSL context is built on Twisted's L{CertificateOptions} and finished
(policy, callbacks, CRLs, session tickets) once per creator, never per
connection: a context that has served a connection cannot be changed, so new
settings or newly loaded material mean a new creator.  Every callback handed to
OpenSSL catches and logs its exceptions, which would otherwise vanish.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from .._settings._identity import describe_identity
from .._settings._material import Material
from .._settings._options import Side
from .._settings._pem import TLSPrivateKey
from .._settings._tls_settings import TLSSettings, VerifyMode
from ._contexts import add_crls, finish, options_for
from ._openssl_internals import quiet_excepthook_for, reject_verified_as_bad_certificate
from ._refusals import record_refusal, record_verify_error
from ._sni import UnrecognizedName, select_context, warn_if_default_serves_no_name
from ._tickets import (
    bind_sessions_to_server_name,
    install_ticket_keys,
    session_id_context,
)

__all__ = ["ServerConnectionCreator", "server_creator"]

_log = Logger()


class NoApplicationProtocol(SSL.Error):
    """
    The client offered ALPN protocols and none is ours (RFC 7301 section 3.2).

    Raised from the ALPN callback, it makes OpenSSL send the
    no_application_protocol alert; being an L{SSL.Error}, Twisted then reports
    it like any other handshake failure.
    """


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator:
    """
    Server-side TLS for one L{TLSSettings}: one context per served certificate,
    shared by every connection.

    @ivar settings: The settings this creator was built from.
    @ivar material: The files of C{settings}, as loaded for this creator.
    """

    def __init__(self, settings: TLSSettings, material: Material | None = None):
        """
        @param material: The files of C{settings}, loaded; by default they are
            loaded now.
        @raise ConfigurationError: as L{TLSSettings.check_for_server}, or for a
            file that cannot be loaded.
        """
        settings.check_for_server()
        self.settings = settings
        self.material = material = material or Material.load(settings)
        self._verify_mode = settings.verify_for(Side.SERVER)
        assert material.key is not None
        self._default = self._options_for(material.chain, material.key)
        # Sessions resume only under the SNI name they were made with.
        bind_sessions_to_server_name(self._default.getContext(), self._policy_context())
        if material.ocsp_staple is not None:
            staple = material.ocsp_staple
            self._default.getContext().set_ocsp_server_callback(lambda c, d: staple)
        self._by_name = [
            (entry, self._options_for(chain, key).getContext())
            for entry, chain, key in material.sni_identities
        ]
        if self._by_name or settings.sni_strict:
            self._default.getContext().set_tlsext_servername_callback(self._select)
            if settings.sni_strict:
                quiet_excepthook_for(UnrecognizedName)
                warn_if_default_serves_no_name(material.chain[0])

    def _policy_context(self) -> bytes:
        """
        The session ID context of the client-admission policy.
        """
        return session_id_context(
            self._verify_mode.value,
            self.material.trusted,
            self.material.crls,
            self.settings.allowed.rules(),
        )

    def _options_for(
        self, chain: Sequence[x509.Certificate], key: TLSPrivateKey
    ) -> CertificateOptions:
        settings, material = self.settings, self.material
        verifying = self._verify_mode is not VerifyMode.NONE
        options = options_for(
            settings,
            chain,
            key,
            verify=verifying,
            caCerts=(
                [crypto.X509.from_cryptography(c) for c in material.trusted]
                if verifying
                else None
            ),
            requireCertificate=self._verify_mode is VerifyMode.REQUIRED,
            # Stateless tickets, so that TLS 1.3 sessions resume at all: with
            # Twisted's default (no tickets, no session cache) a client is
            # handed tickets that can never be used.
            enableSessionTickets=True,
        )
        context = options.getContext()
        finish(context, settings)
        context.set_session_id(self._policy_context())
        if material.ticket_keys is not None:
            install_ticket_keys(context, material.ticket_keys)
        context.set_verify(context.get_verify_mode(), self._verify)
        if settings.allowed:
            reject_verified_as_bad_certificate(context)
        if verifying:
            # Tell clients which CAs we accept, as 'openssl s_client' shows.
            for certificate in material.trusted:
                context.add_client_ca(certificate)
            store = context.get_cert_store()
            assert store is not None
            add_crls(store, material.crls)
        # Always ours: Twisted's own callback answers "no overlap" with an empty
        # protocol name, which OpenSSL 3.x/4 turns into an internal_error alert
        # for every client that offers ALPN (browsers, curl) to a server
        # configured without it.
        context.set_alpn_select_callback(self._select_protocol)
        return options

    def _verify(
        self,
        connection: SSL.Connection,
        certificate: crypto.X509,
        code: int,
        depth: int,
        ok: int,
    ) -> bool:
        """
        OpenSSL's verify callback: keep its verdict, remember why it failed, and
        refuse a verified client certificate that no --allow-* rule matches.
        """
        try:
            if not ok:
                record_verify_error(connection, code, depth, certificate)
                return False
            allowed = self.settings.allowed
            if depth == 0 and allowed:
                leaf = certificate.to_cryptography()
                refusal = allowed.refusal(leaf)
                if refusal is not None:
                    record_refusal(
                        connection,
                        f"client certificate not authorized ({describe_identity(leaf)}): "
                        + refusal,
                    )
                    return False
            return True
        except Exception:
            _log.failure("while verifying a client certificate", event="internal.error")
            return False

    def _select_protocol(self, connection: SSL.Connection, offered: list[bytes]) -> Any:
        """
        Pick our most preferred protocol the client offered; with none in
        common, fail the handshake with no_application_protocol.  Without
        C{--alpn}, go on without ALPN (RFC 7301 section 3.2 lets a server
        ignore the extension).
        """
        if not self.settings.alpn:
            return SSL.NO_OVERLAPPING_PROTOCOLS
        for protocol in self.settings.alpn:
            if protocol.encode() in offered:
                return protocol.encode()
        raise NoApplicationProtocol(
            [("tlsecho", "", "no application protocol in common (ALPN)")]
        )

    def _select(self, connection: SSL.Connection) -> None:
        """
        The SNI callback: the context for the requested name (L{select_context}).
        """
        select_context(
            connection, self._by_name, self.material.chain[0], self.settings.sni_strict
        )

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """
        A new OpenSSL connection for an accepted client.
        """
        return self._default.serverConnectionForTLS(tlsProtocol)


def server_creator(
    settings: TLSSettings, material: Material | None = None
) -> ServerConnectionCreator:
    """
    The server connection creator for C{settings}, serving C{material} (by
    default, the files of C{settings} loaded now).

    @raise ConfigurationError: if C{settings} has no certificate, asks for
        client certificates without C{ca}, or has client-only options; or if
        a file cannot be loaded.
    """
    return ServerConnectionCreator(settings, material)
