"""
Client-side TLS from L{TLSSettings}: a verifying client creator, plus what
tlsecho adds per connection (diagnosis of failed verification, SPKI pins, the
OCSP staple request and check).

The context comes from Twisted's L{CertificateOptions} like the server's (see
L{tlsecho._creators}).  The server's name is checked here, not by Twisted's
C{ClientTLSOptions}, whose verify callback logs whatever C{service_identity}
raises (an unreadable subjectAltName, no subjectAltName at all) and then
returns the chain's verdict: fail-open.  Here the verdict is fail-closed: a
server certificate is accepted only when the name check positively succeeded
for it, twice and independently -- OpenSSL's own host check during chain
verification (L{tlsecho._hostcheck}) and C{service_identity} (which gives the
words) -- and the handshake is failed when it completes unless that very
certificate was approved.  The reference name is normalised once
(L{reference_name}) and used for SNI and for both checks.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import idna
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import extract_patterns
from service_identity.hazmat import DNS_ID, IPAddress_ID, verify_service_identity
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ._contexts import TrustRoot, finish, options_for
from ._diagnosis import record_refusal, record_verify_error, register_trust
from ._errors import ConfigurationError, PeerRejected
from ._hostcheck import HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH, expect_peer_name
from ._identity import CertificateNames, describe_identity, spki_sha256
from ._material import Material
from ._options import Side
from ._revocation import check_ocsp_staple
from ._settings import TLSSettings, VerifyMode

__all__ = ["ReferenceName", "client_creator", "reference_name"]

_log = Logger()

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: An ASCII host name that IDNA 2008 refuses but DNS allows (an underscore,
#: say): non-empty labels of letters, digits, hyphens and underscores.
_ASCII_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


@dataclass(frozen=True)
class ReferenceName:
    """
    The name the server's certificate must be valid for, normalised once and
    used for SNI and for both name checks.

    @ivar text: The DNS name (ASCII, lower case, no trailing dot) or the IP
        address as text.
    @ivar address: The IP address, or L{None} for a DNS name.
    """

    text: str
    address: _IPAddress | None = None

    @property
    def sni(self) -> bytes | None:
        """
        What to send as SNI: the DNS name; nothing for an IP address (RFC 6066).
        """
        return None if self.address is not None else self.text.encode("ascii")


def _address(text: str) -> _IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # Without a zone (%eth0), and an IPv4-mapped IPv6 address as the IPv4
    # address it is, so that an IPv4 name constraint applies to it.
    address = ipaddress.ip_address(address.packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def reference_name(name: str, option: str = "servername") -> ReferenceName:
    """
    Normalise the name to verify the server's certificate for: an IP address
    (IPv4-mapped IPv6 as IPv4, brackets and zone dropped), or a DNS name with
    one trailing dot stripped, case folded and IDNA-encoded (UTS 46, as
    Twisted's verifying client does).  C{localhost.} is C{localhost}.

    @raise ConfigurationError: naming C{option}, for a name that is neither.
    """
    text = name.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = _address(text)
    if address is None:
        address = _address(text.removesuffix("."))
    if address is not None:
        return ReferenceName(str(address), address)
    text = text.removesuffix(".")
    try:
        encoded = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        encoded = text.lower() if text.isascii() else ""
        if _ASCII_HOST.fullmatch(encoded) is None:
            raise ConfigurationError(
                option, f"{name!r} is neither a host name nor an IP address"
            ) from None
    if _address(encoded) is not None or _ASCII_HOST.fullmatch(encoded) is None:
        raise ConfigurationError(option, f"{name!r} is not a usable host name")
    return ReferenceName(encoded)


def _shown(text: object, limit: int = 200) -> str:
    """
    C{text} from a certificate or a library, safe for one line: escaped,
    length-capped.
    """
    shown = ascii(str(text))[1:-1]
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()


class _NameCheck:
    """
    The verify callback of one client connection: OpenSSL's verdict on the
    chain (which includes its own host check) and, for the leaf, the
    C{service_identity} name check and the key usage check.  It says yes only
    when every check positively succeeded, and remembers which leaf it
    approved for L{_HandshakeCheck}.  Whatever goes wrong is a refusal, with
    its words recorded for L{tlsecho._diagnosis.describe_failure}.
    """

    def __init__(self, reference: ReferenceName):
        self._reference = reference
        self._id: DNS_ID | IPAddress_ID = (
            IPAddress_ID(reference.text)
            if reference.address is not None
            else DNS_ID(reference.text)
        )
        self.approved: bytes | None = None

    def __call__(
        self,
        connection: SSL.Connection,
        certificate: crypto.X509,
        error: int,
        depth: int,
        ok: int,
    ) -> bool:
        try:
            return self._verdict(connection, certificate, error, depth, bool(ok))
        except Exception as e:
            record_refusal(
                connection,
                "certificate verify failed: the server's certificate could not be "
                f"checked ({type(e).__name__}: {_shown(e)})",
            )
            return False

    def _verdict(
        self,
        connection: SSL.Connection,
        certificate: crypto.X509,
        error: int,
        depth: int,
        ok: bool,
    ) -> bool:
        self.approved = None
        if not ok:
            if depth == 0 and error in (HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH):
                leaf = certificate.to_cryptography()
                record_refusal(
                    connection,
                    self._name_problem(leaf)
                    or self._mismatch(leaf, "OpenSSL's host check refused it"),
                )
            else:
                record_verify_error(connection, error, depth)
            return False
        if depth != 0:
            return True
        leaf = certificate.to_cryptography()
        problem = self._name_problem(leaf) or _key_usage_problem(leaf)
        if problem is not None:
            record_refusal(connection, problem)
            return False
        self.approved = _fingerprint(leaf)
        return True

    def _name_problem(self, leaf: x509.Certificate) -> str | None:
        """
        Why C{service_identity} refuses C{leaf} for the reference name, or
        L{None} if (and only if) it positively matched.
        """
        try:
            verify_service_identity(extract_patterns(leaf), [self._id], [])
        except VerificationError:
            return self._mismatch(leaf)
        except (CertificateError, ValueError) as e:
            return _no_usable_name(leaf, e)
        except Exception as e:
            return (
                "certificate verify failed: the host name check failed "
                f"({type(e).__name__}: {_shown(e)})"
            )
        return None

    def _mismatch(self, leaf: x509.Certificate, why: str | None = None) -> str:
        try:
            names = CertificateNames.of(leaf).hosts()
        except Exception:
            names = []
        details = [why] if why else []
        if names:
            details.append(f"it is for {_shown(', '.join(names))}")
        return (
            "certificate verify failed: hostname mismatch: not valid for "
            f"{self._reference.text!r}" + (f" ({'; '.join(details)})" if details else "")
        )


def _no_usable_name(leaf: x509.Certificate, error: Exception) -> str:
    """
    The refusal of a certificate whose names C{service_identity} cannot use.
    """
    try:
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        detail = "it has no subjectAltName; the subject CN is not a name to check"
    except Exception as e:
        detail = f"its subjectAltName cannot be read: {_shown(e)}"
    else:
        detail = _shown(error)
    return f"certificate verify failed: no usable name in the certificate ({detail})"


def _key_usage_problem(leaf: x509.Certificate) -> str | None:
    """
    Why the server may not sign the handshake with C{leaf}'s key, or L{None}.

    Every handshake tlsecho allows has the server sign with it (TLS 1.3, and
    TLS 1.2 with ECDHE only, see L{tlsecho._policy}), so a keyUsage extension
    must allow digitalSignature (RFC 5280 4.2.1.3).  OpenSSL checks this for
    ECDSA keys in TLS 1.2 only.
    """
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if usage.digital_signature:
        return None
    return (
        "certificate verify failed: the server's key may not be used for this "
        "handshake (its keyUsage lacks digitalSignature)"
    )


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

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection: SSL.Connection = self._options.clientConnectionForTLS(tlsProtocol)
        sni = self._reference.sni
        if sni is not None:
            connection.set_tlsext_host_name(sni)
        names: _NameCheck | None = None
        if self._trust is not None:
            register_trust(connection, self._trust.store)
            expect_peer_name(connection, self._reference.address or self._reference.text)
            names = _NameCheck(self._reference)
            connection.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, names)
        if self._settings.require_ocsp_staple:
            connection.request_ocsp()
        if names is not None or self._settings.pins:
            connection.set_info_callback(
                _HandshakeCheck(tlsProtocol, names, self._settings.pins)
            )
        return connection


class _HandshakeCheck:
    """
    An info callback that, when the handshake is done, fails the connection
    unless the name check approved the very certificate the server sent (when
    verifying) and the server's key matches one of the SPKI pins (if any).
    """

    def __init__(
        self,
        tlsProtocol: TLSMemoryBIOProtocol,
        names: _NameCheck | None,
        pins: frozenset[bytes],
    ):
        self._protocol: TLSMemoryBIOProtocol | None = tlsProtocol
        self._names = names
        self._pins = pins

    def __call__(self, connection: SSL.Connection, where: int, ret: int) -> None:
        if not where & SSL.SSL_CB_HANDSHAKE_DONE or self._protocol is None:
            return
        protocol, self._protocol = self._protocol, None
        try:
            problem = self._problem(connection)
        except Exception as e:
            problem = (
                "certificate verify failed: the server's certificate could not be "
                f"checked ({type(e).__name__}: {_shown(e)})"
            )
        if problem is not None:
            protocol.failVerification(Failure(PeerRejected(problem)))

    def _problem(self, connection: SSL.Connection) -> str | None:
        leaf = connection.get_peer_certificate(as_cryptography=True)
        if self._names is not None and (
            leaf is None or self._names.approved != _fingerprint(leaf)
        ):
            return "certificate verify failed: the server's certificate was not checked"
        if self._pins and (leaf is None or spki_sha256(leaf) not in self._pins):
            shown = describe_identity(leaf) if leaf is not None else "no certificate"
            return (
                f"certificate pin mismatch: the server's key ({shown}) "
                "matches no --pin-spki"
            )
        return None


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


def client_creator(
    settings: TLSSettings,
    servername: str,
    extra_trust: Sequence[x509.Certificate] = (),
    material: Material | None = None,
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
    options = options_for(settings, material.chain, material.key, **extra)
    context = options.getContext()
    finish(context, settings)
    if settings.require_ocsp_staple:
        context.set_ocsp_client_callback(_check_staple)
    return _ClientCreator(options, settings, trust, reference)
