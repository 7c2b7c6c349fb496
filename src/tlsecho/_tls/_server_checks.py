"""
What a tlsecho client checks about the server, beyond OpenSSL's chain
verification: the name, the key usage, the SPKI pins and the OCSP staple.

Every check that refuses the server does so inside the verify callback, so
that OpenSSL ends the handshake with an alert and the server can say that
its certificate was refused (not that the connection was lost).

The checks fail closed.  Twisted's C{ClientTLSOptions} has a verify callback
that logs whatever C{service_identity} raises (an unreadable subjectAltName,
no subjectAltName at all) and then returns the chain's verdict: fail-open.
Here a server certificate is accepted only when the name check positively
succeeded for it, twice and independently -- OpenSSL's own host check during
chain verification (L{tlsecho._tls._openssl_internals}) and C{service_identity} (which
gives the words) -- and the handshake is failed when it completes unless that
very certificate was approved (L{NameCheck}, L{HandshakeCheck}).  Every
refusal is recorded in words (L{tlsecho._tls._refusals}).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import extract_patterns
from service_identity.hazmat import DNS_ID, IPAddress_ID, verify_service_identity
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure

from .._settings._errors import PeerRejected
from .._settings._identity import CertificateNames, describe_identity, spki_sha256
from .._settings._reference_name import ReferenceName
from .._settings._revocation import check_ocsp_staple
from .._settings._text import printable
from ._openssl_internals import HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH, session_reused
from ._refusals import record_refusal, record_verify_error

__all__ = ["HandshakeCheck", "NameCheck", "PinCheck", "check_staple", "fingerprint"]

_log = Logger()


def fingerprint(certificate: x509.Certificate) -> bytes:
    """
    The SHA-256 of C{certificate}'s DER: which leaf L{NameCheck} approved.
    """
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()


def _pin_problem(leaf: x509.Certificate | None, pins: frozenset[bytes]) -> str | None:
    """
    Why C{leaf}'s key matches none of C{pins}, or L{None} if it matches one
    (or there are no pins).
    """
    if not pins or (leaf is not None and spki_sha256(leaf) in pins):
        return None
    shown = describe_identity(leaf) if leaf is not None else "no certificate"
    return f"certificate pin mismatch: the server's key ({shown}) matches no --pin-spki"


class PinCheck:
    """
    The verify callback of a client connection that pins the server's key
    without verifying the chain (C{--verify none --pin-spki}): any chain is
    let through but a leaf whose key matches no pin, which is refused there,
    so that OpenSSL sends the server an alert.
    """

    def __init__(self, pins: frozenset[bytes]):
        self._pins = pins

    def __call__(
        self,
        connection: SSL.Connection,
        certificate: crypto.X509,
        error: int,
        depth: int,
        ok: int,
    ) -> bool:
        if depth != 0:
            return True
        try:
            problem = _pin_problem(certificate.to_cryptography(), self._pins)
        except Exception as e:
            problem = (
                "certificate verify failed: the server's certificate could not be "
                f"checked ({type(e).__name__}: {printable(e)})"
            )
        if problem is not None:
            record_refusal(connection, problem)
            return False
        return True


class NameCheck:
    """
    The verify callback of one client connection: OpenSSL's verdict on the
    chain (which includes its own host check) and, for the leaf, the
    C{service_identity} name check, the key usage check and the SPKI pins.
    It says yes only when every check positively succeeded, and remembers
    which leaf it approved for L{HandshakeCheck}.  Whatever goes wrong is a
    refusal, with its words recorded for
    L{tlsecho._tls._diagnosis.describe_failure} (L{tlsecho._tls._refusals}).
    """

    def __init__(self, reference: ReferenceName, pins: frozenset[bytes] = frozenset()):
        self._reference = reference
        self._id: DNS_ID | IPAddress_ID = (
            IPAddress_ID(reference.text)
            if reference.address is not None
            else DNS_ID(reference.text)
        )
        self._pins = pins
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
                f"checked ({type(e).__name__}: {printable(e)})",
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
                record_verify_error(connection, error, depth, certificate)
            return False
        if depth != 0:
            return True
        leaf = certificate.to_cryptography()
        problem = (
            self._name_problem(leaf)
            or _key_usage_problem(leaf)
            or _pin_problem(leaf, self._pins)
        )
        if problem is not None:
            record_refusal(connection, problem)
            return False
        self.approved = fingerprint(leaf)
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
                f"({type(e).__name__}: {printable(e)})"
            )
        return None

    def _mismatch(self, leaf: x509.Certificate, why: str | None = None) -> str:
        try:
            names = CertificateNames.of(leaf).hosts()
        except Exception:
            names = []
        details = [why] if why else []
        if names:
            details.append(f"it is for {printable(', '.join(names))}")
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
        detail = f"its subjectAltName cannot be read: {printable(e)}"
    else:
        detail = printable(error)
    return f"certificate verify failed: no usable name in the certificate ({detail})"


def _key_usage_problem(leaf: x509.Certificate) -> str | None:
    """
    Why the server may not sign the handshake with C{leaf}'s key, or L{None}.

    Every handshake tlsecho allows has the server sign with it (TLS 1.3, and
    TLS 1.2 with ECDHE only, see L{tlsecho._settings._profiles}), so a keyUsage extension
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


class HandshakeCheck:
    """
    An info callback that, when the handshake is done, fails the connection
    unless the name check approved the very certificate the server sent (when
    verifying) and the server's key matches one of the SPKI pins (if any).
    The verify callbacks (L{NameCheck}, L{PinCheck}) have refused such a
    server already, with an alert; this is the second gate, and the only one
    for a resumed session.

    A resumed session runs no verify callback: its certificate counts as
    approved only when the connection resumed the very session offered for
    it, C{resumed} being the fingerprint of the leaf this client's name check
    approved, for the same reference name, on the connection that made the
    session (L{tlsecho._tls._client_creator}).
    """

    def __init__(
        self,
        tlsProtocol: TLSMemoryBIOProtocol,
        names: NameCheck | None,
        pins: frozenset[bytes],
        resumed: bytes | None = None,
    ):
        self._protocol: TLSMemoryBIOProtocol | None = tlsProtocol
        self._names = names
        self._pins = pins
        self._resumed = resumed

    def __call__(self, connection: SSL.Connection, where: int, ret: int) -> None:
        if not where & SSL.SSL_CB_HANDSHAKE_DONE or self._protocol is None:
            return
        protocol, self._protocol = self._protocol, None
        try:
            problem = self._problem(connection)
        except Exception as e:
            problem = (
                "certificate verify failed: the server's certificate could not be "
                f"checked ({type(e).__name__}: {printable(e)})"
            )
        if problem is None:
            return
        try:
            protocol.failVerification(Failure(PeerRejected(problem)))
        except Exception:
            # pyOpenSSL ignores what an info callback raises: the refusal must
            # still stand.
            protocol.abortConnection()

    def _problem(self, connection: SSL.Connection) -> str | None:
        leaf = connection.get_peer_certificate(as_cryptography=True)
        if self._names is not None:
            approved = self._names.approved
            if approved is None and session_reused(connection):
                approved = self._resumed
            if approved is None or leaf is None or approved != fingerprint(leaf):
                return "certificate verify failed: the server's certificate was not checked"
        return _pin_problem(leaf, self._pins)


def check_staple(connection: SSL.Connection, staple: bytes, data: object) -> bool:
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
        _log.failure("while checking the stapled OCSP response", event="internal.error")
        return False
