"""
Build the server's Twisted TLS connection creator from L{TLSSettings} and the
L{Material} loaded from its files: the seam between the settings and every
server endpoint.  L{tlsecho._client_creators}
makes the client's; L{tlsecho._contexts} holds what both share.

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

from ._contexts import add_crls, finish, options_for
from ._diagnosis import record_refusal, record_verify_error
from ._identity import CertificateNames, describe_identity
from ._material import Material
from ._options import Side
from ._pem import TLSPrivateKey
from ._settings import TLSSettings, VerifyMode
from ._text import printable
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


class UnrecognizedName(Exception):
    """
    Strict SNI: the client asked for a name we have no certificate for.

    Raised from the SNI callback, it makes OpenSSL send unrecognized_name.
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
                _quiet_excepthook_for(UnrecognizedName)
                _warn_if_default_serves_no_name(material.chain[0])

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
            _reject_as_bad_certificate(context)
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
            _log.failure("while verifying a client certificate")
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
        The SNI callback: switch to the context of the certificate for the
        requested name; under --sni-strict refuse names we do not serve.
        """
        raw = connection.get_servername()
        if raw is None:
            return  # no SNI (an IP address): the default certificate
        name = raw.decode("ascii", "replace")
        for entry, context in self._by_name:
            if entry.matches(name):
                connection.set_context(context)
                return
        if self.settings.sni_strict and not _serves(self.material.chain[0], name):
            record_refusal(
                connection, f"unrecognized name '{printable(raw)}' (--sni-strict)"
            )
            raise UnrecognizedName(name)

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """
        A new OpenSSL connection for an accepted client.
        """
        return self._default.serverConnectionForTLS(tlsProtocol)


def _reject_as_bad_certificate(context: SSL.Context) -> None:
    """
    Make a refusal by our verify callback send the bad_certificate alert.

    When the callback refuses a certificate OpenSSL itself found valid (an
    --allow-* rule did not match), OpenSSL's verify error is still "ok", which
    it reports with the internal_error alert: wrong, and misleading for the
    client.  pyOpenSSL does not let a callback set the error, so we wrap its
    C callback and set X509_V_ERR_CERT_REJECTED ("certificate rejected", sent
    as bad_certificate) through the same OpenSSL binding pyOpenSSL uses.
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


def _serves(certificate: x509.Certificate, name: str) -> bool:
    """
    Whether C{certificate} is valid for the host C{name}.
    """
    from service_identity.cryptography import verify_certificate_hostname
    from service_identity.exceptions import VerificationError

    try:
        verify_certificate_hostname(certificate, name)
    except VerificationError:
        return False
    except Exception:
        # A certificate without usable names (no SAN: CertificateError), or a
        # name service-identity cannot use: serves nothing, fail closed.  This
        # runs for every handshake; the certificate was described once at
        # start (_warn_if_default_serves_no_name).
        return False
    return True


def _warn_if_default_serves_no_name(certificate: x509.Certificate) -> None:
    """
    Under --sni-strict, say once (at start or reload) that the default
    certificate is valid for no SNI name, rather than fail on every handshake.
    """
    names = CertificateNames.of(certificate)
    if names.unreadable:
        why = f"its {' and '.join(names.unreadable)} cannot be read"
    elif not names.dns_names and not names.ip_addresses:
        why = "it has no subjectAltName (no DNS name or IP address)"
    else:
        return
    _log.warn(
        "--sni-strict: the default certificate (--cert, {subject}) is valid for no "
        "name, as {why}: every client sending an SNI name that no --sni "
        "certificate serves is refused",
        subject=describe_identity(certificate, with_pin=False),
        why=why,
    )


_quieted: set[type[BaseException]] = set()


def _quiet_excepthook_for(kind: type[BaseException]) -> None:
    """
    pyOpenSSL reports an exception from the SNI callback through
    C{sys.excepthook} (a traceback on standard error) before OpenSSL sends the
    alert; for our deliberate refusal, that is noise.  Install, once, a hook that
    stays silent for C{kind} and passes everything else on.
    """
    import sys

    if kind in _quieted:
        return
    _quieted.add(kind)
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(exc_type, tuple(_quieted)):
            previous(exc_type, value, tb)

    sys.excepthook = hook


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
