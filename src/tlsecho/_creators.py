"""
Build Twisted TLS connection creators from L{TLSSettings}: the seam between the
settings and every endpoint.

Both sides start from Twisted's L{CertificateOptions}; the client wraps it in
Twisted's L{ClientTLSOptions}, which checks the server's host name with
C{service_identity} and sends SNI (exactly what L{optionsForClientTLS} does, but
keeping the context within reach).  Each pyOpenSSL context is built and finished
(policy, callbacks, CRLs) once per settings value, never per connection: a
context that has served a connection cannot be changed, so new settings mean a
new creator.  Every callback handed to OpenSSL catches and logs its exceptions,
which would otherwise vanish.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import idna
from cryptography import x509
from OpenSSL import SSL, crypto

# IOpenSSLTrustRoot is the documented type of the trustRoot= arguments and
# ClientTLSOptions the creator optionsForClientTLS returns, but Twisted only
# defines them in this private module.
from twisted.internet._sslverify import ClientTLSOptions, IOpenSSLTrustRoot
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ._diagnosis import record_refusal, record_verify_error, register_trust
from ._errors import ConfigurationError, PeerRejected
from ._identity import describe_identity, spki_sha256
from ._pem import TLSPrivateKey
from ._policy import INTERMEDIATE_CIPHERS, apply_policy
from ._revocation import check_ocsp_staple
from ._settings import TLSSettings, VerifyMode

__all__ = ["ServerConnectionCreator", "client_creator", "server_creator"]

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


class _KeyLog:
    """
    Append TLS secrets in the NSS key log format to a file (for Wireshark).
    """

    def __init__(self, path: Path):
        self._path = path
        self._lock = threading.Lock()

    def __call__(self, connection: SSL.Connection, line: bytes) -> None:
        try:
            with self._lock:
                descriptor = os.open(
                    self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
                )
                with os.fdopen(descriptor, "ab") as f:
                    f.write(line + b"\n")
        except Exception:
            _log.failure("while writing the TLS key log {path}", path=str(self._path))


@implementer(IOpenSSLTrustRoot)
class _TrustRoot:
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


def _options(
    settings: TLSSettings,
    chain: Sequence[x509.Certificate] = (),
    key: TLSPrivateKey | None = None,
    **extra: Any,
) -> CertificateOptions:
    """
    L{CertificateOptions} for an identity (if any) under the settings' policy.
    """
    policy = settings.policy
    arguments: dict[str, Any] = {
        "raiseMinimumTo": policy.min_tls,
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


def _finish(context: SSL.Context, settings: TLSSettings) -> None:
    """
    What every context gets on top of L{CertificateOptions}: the full policy
    and the key log.
    """
    apply_policy(context, settings.policy)
    if settings.keylog_file is not None:
        context.set_keylog_callback(_KeyLog(settings.keylog_file))


def _check_serveable(settings: TLSSettings) -> None:
    """
    Refuse server settings that could never complete a handshake or that ask
    for client checks without the means to do them.
    """
    verify = settings.verify or VerifyMode.NONE
    if settings.key is None:
        raise ConfigurationError("--cert", "the server needs a certificate and key")
    if verify is not VerifyMode.NONE and not settings.trusted:
        raise ConfigurationError(
            "--verify",
            f"{verify.value} needs --ca: the CA certificates that client "
            "certificates must chain to",
        )
    if settings.allowed and verify is VerifyMode.NONE:
        raise ConfigurationError(
            "--allow-cn/--allow-dns/--allow-uri/--allow-spki",
            "need --verify optional or required (and --ca)",
        )
    if settings.crls and verify is VerifyMode.NONE:
        raise ConfigurationError(
            "--crl", "checks client certificates: it needs --verify optional or required"
        )
    if settings.pins:
        raise ConfigurationError("--pin-spki", "is a client option")
    if settings.require_ocsp_staple:
        raise ConfigurationError("--require-ocsp-staple", "is a client option")


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator:
    """
    Server-side TLS for one L{TLSSettings}: one context per served certificate,
    shared by every connection.

    @ivar settings: The settings this creator was built from.
    """

    def __init__(self, settings: TLSSettings):
        _check_serveable(settings)
        self.settings = settings
        assert settings.key is not None
        self._default = self._options_for(settings.chain, settings.key)
        if settings.ocsp_staple is not None:
            staple = settings.ocsp_staple
            self._default.getContext().set_ocsp_server_callback(lambda c, d: staple)
        self._by_name = [
            (entry, self._options_for(chain, key).getContext())
            for entry, chain, key in settings.sni_identities
        ]
        if self._by_name or settings.sni_strict:
            self._default.getContext().set_tlsext_servername_callback(self._select)
            if settings.sni_strict:
                _quiet_excepthook_for(UnrecognizedName)

    def _options_for(
        self, chain: Sequence[x509.Certificate], key: TLSPrivateKey
    ) -> CertificateOptions:
        settings = self.settings
        verify = settings.verify or VerifyMode.NONE
        verifying = verify is not VerifyMode.NONE
        options = _options(
            settings,
            chain,
            key,
            verify=verifying,
            caCerts=(
                [crypto.X509.from_cryptography(c) for c in settings.trusted]
                if verifying
                else None
            ),
            requireCertificate=verify is VerifyMode.REQUIRED,
        )
        context = options.getContext()
        _finish(context, settings)
        context.set_verify(context.get_verify_mode(), self._verify)
        if settings.allowed:
            _reject_as_bad_certificate(context)
        if verifying:
            # Tell clients which CAs we accept, as 'openssl s_client' shows.
            for certificate in settings.trusted:
                context.add_client_ca(certificate)
            store = context.get_cert_store()
            assert store is not None
            add_crls(store, settings.crls)
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
                record_verify_error(connection, code, depth)
                return False
            allowed = self.settings.allowed
            if depth == 0 and allowed:
                leaf = certificate.to_cryptography()
                if not allowed.allows(leaf):
                    record_refusal(
                        connection,
                        f"client certificate not authorized ({describe_identity(leaf)}): "
                        "no --allow-* rule matches",
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
        if self.settings.sni_strict and not _serves(self.settings.chain[0], name):
            record_refusal(connection, f"unrecognized name {name!r} (--sni-strict)")
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
    except (VerificationError, ValueError):
        return False
    return True


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


def server_creator(settings: TLSSettings) -> ServerConnectionCreator:
    """
    The server connection creator for C{settings}.

    @raise ConfigurationError: if C{settings} has no certificate, asks for
        client certificates without C{ca}, or has client-only options.
    """
    return ServerConnectionCreator(settings)


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
        trust: _TrustRoot | None,
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
    if settings.sni or settings.sni_strict or settings.ocsp_response or settings.allowed:
        raise ConfigurationError(
            "--sni/--allow-*/--ocsp-response", "are server options, not client options"
        )
    trust = None
    extra: dict[str, Any] = {}
    if verify is VerifyMode.REQUIRED:
        trust = _TrustRoot(
            list(settings.trusted) + list(extra_trust),
            platform=not settings.trusted,
            crls=settings.crls,
        )
        extra["trustRoot"] = trust
    options = _options(settings, settings.chain, settings.key, **extra)
    context = options.getContext()
    _finish(context, settings)
    if settings.require_ocsp_staple:
        context.set_ocsp_client_callback(_check_staple)
    if trust is None:
        # The same IDNA 2008 / UTS 46 encoding Twisted's verifying client uses.
        sni = None if _is_ip_address(servername) else idna.encode(servername, uts46=True)
        return _ClientCreator(options.clientConnectionForTLS, settings, None, sni)
    verifying = ClientTLSOptions(options.clientConnectionForTLS, servername)
    return _ClientCreator(verifying.clientConnectionForTLS, settings, trust)
