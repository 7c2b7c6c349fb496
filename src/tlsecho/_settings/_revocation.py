"""
Revocation: certificate revocation lists, OCSP responses to staple, and the check
of a stapled OCSP response by the client.

CRLs (PEM or DER) are handed to OpenSSL, which checks the peer's certificate
against them during verification.  An OCSP response file (DER, as C{openssl ocsp
-respout} writes) is stapled by the server when a client asks for it; a client
that requires a staple checks it was signed by the certificate's issuer (or a
responder the issuer delegated to), names the certificate, is current and says
"good".
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ._errors import ConfigurationError
from ._files import read_file

__all__ = [
    "check_ocsp_staple",
    "crl_problems",
    "load_crl",
    "load_crls",
    "load_ocsp_response",
]

#: How far a response's this_update may lie in the future (clock skew).
_SKEW = datetime.timedelta(minutes=5)


_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----\r?\n.*?-----END X509 CRL-----", re.DOTALL)


def load_crl(path: Path, option: str = "--crl") -> x509.CertificateRevocationList:
    """
    Load a file holding exactly one CRL (PEM or DER); see L{load_crls}.

    @raise ConfigurationError: as L{load_crls} does, or if it holds several.
    """
    crls = load_crls(path, option)
    if len(crls) != 1:
        raise ConfigurationError(
            option, f"holds {len(crls)} CRLs where one was expected", path
        )
    return crls[0]


def load_crls(
    path: Path, option: str = "--crl"
) -> tuple[x509.CertificateRevocationList, ...]:
    """
    Load every CRL of a file: one DER CRL, or one or more PEM CRLs (a bundle).

    Every CRL read is used: a delta CRL is refused, because OpenSSL does not
    apply deltas unless asked to, and a CRL loaded but not applied would let
    the certificates it revokes in.

    @raise ConfigurationError: if the file is missing, holds no CRL, holds a
        malformed one, or holds a delta CRL.
    """
    data = read_file(path, option)
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            blocks = _PEM_CRL.findall(data)
            if len(blocks) != data.count(b"-----BEGIN X509 CRL-----"):
                raise ValueError("a PEM CRL without its end line")
            crls = tuple(x509.load_pem_x509_crl(block) for block in blocks)
        else:
            crls = (x509.load_der_x509_crl(data),)
    except ValueError:
        raise ConfigurationError(
            option, "holds no certificate revocation list (PEM or DER)", path
        ) from None
    for crl in crls:
        try:
            crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        except x509.ExtensionNotFound:
            continue
        except ValueError:
            raise ConfigurationError(
                option, "holds a CRL whose extensions cannot be read", path
            ) from None
        raise ConfigurationError(
            option,
            "is a delta CRL (it carries the Delta CRL Indicator extension), which "
            "tlsecho does not apply; give the complete CRL instead",
            path,
        )
    return crls


def crl_problems(
    crl: x509.CertificateRevocationList,
    trusted: Sequence[x509.Certificate] | None,
    now: datetime.datetime | None = None,
) -> list[str]:
    """
    Why C{crl} cannot work now: expired, not valid yet, or not issued by (or
    not signed by) a trusted CA.  With it, every certificate its issuer
    issued is refused; none is waved through, but the refusals would blame
    the certificate.

    @param trusted: The CA certificates peers' chains must lead to, or
        L{None} when they are not known (the platform's store): then the
        issuer is not checked.
    @return: One phrase per problem, each starting "the CRL for ISSUER".
    """
    now = now or datetime.datetime.now(datetime.UTC)
    issuer = crl.issuer.rfc4514_string() or "(empty issuer)"
    about = f"the CRL for {issuer}"
    problems = []
    if crl.last_update_utc > now:  # OpenSSL allows no skew here
        problems.append(
            f"{about} is not valid yet (valid from "
            f"{crl.last_update_utc:%Y-%m-%d %H:%M:%S} UTC): every certificate "
            "that CA issued is refused until then"
        )
    next_update = crl.next_update_utc
    if next_update is not None and next_update < now:
        problems.append(
            f"{about} has expired (next update was on "
            f"{next_update:%Y-%m-%d %H:%M:%S} UTC): every certificate that CA "
            "issued is refused until it is replaced"
        )
    if trusted is not None:
        named = [c for c in trusted if c.subject == crl.issuer]
        if not named:
            problems.append(
                f"{about} is issued by {issuer}, which is not among the --ca "
                "certificates: it is only used for chains that bring that CA "
                "along; any other chain from it is refused (no CRL)"
            )
        elif not any(_signed_by(crl, c) for c in named):
            problems.append(
                f"{about} is not signed by the CA certificate {issuer} it names "
                "as its issuer: every certificate that CA issued is refused"
            )
    return problems


def _signed_by(crl: x509.CertificateRevocationList, certificate: x509.Certificate) -> bool:
    key = certificate.public_key()
    try:
        return isinstance(
            key,
            rsa.RSAPublicKey
            | ec.EllipticCurvePublicKey
            | ed25519.Ed25519PublicKey
            | ed448.Ed448PublicKey
            | dsa.DSAPublicKey,
        ) and crl.is_signature_valid(key)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def load_ocsp_response(
    path: Path,
    certificate: x509.Certificate,
    issuer: x509.Certificate | None = None,
    option: str = "--ocsp-response",
) -> bytes:
    """
    Load a DER OCSP response to staple for C{certificate}, and check it as a
    client would: successful, about this certificate, current, not revoked,
    and (when C{issuer} is known, i.e. the chain file includes it) signed by
    the issuer or its delegated responder.

    @raise ConfigurationError: naming C{option} and the file, if any check fails.
    """
    data = read_file(path, option)
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise ConfigurationError(option, "holds no DER OCSP response", path) from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ConfigurationError(
            option, f"OCSP response status is {response.response_status.name}", path
        )
    if response.serial_number != certificate.serial_number:
        raise ConfigurationError(
            option, "the OCSP response is about another certificate than --cert", path
        )
    if response.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        raise ConfigurationError(option, "the OCSP response says --cert is revoked", path)
    problem = check_ocsp_staple(
        data, certificate, issuer, check_signature=issuer is not None
    )
    if problem is not None:
        raise ConfigurationError(option, problem.replace("stapled ", ""), path)
    return data


def _responder_is_trusted(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """
    Whether the response is signed by C{issuer}, or by a responder certificate
    that C{issuer} issued for OCSP signing (RFC 6960 section 4.2.2.2).
    """
    signers = [issuer]
    for candidate in response.certificates:
        try:
            usage = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
            candidate.verify_directly_issued_by(issuer)
        except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usage.value:
            signers.append(candidate)
    for signer in signers:
        try:
            _verify_signature(signer.public_key(), response)
        except (InvalidSignature, TypeError, ValueError):
            continue
        return True
    return False


def _verify_signature(key: object, response: ocsp.OCSPResponse) -> None:
    """
    Check the response's signature with C{key}; raise L{InvalidSignature} if wrong.
    """
    algorithm = response.signature_hash_algorithm
    if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(
            response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
        )
    elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(response.signature, response.tbs_response_bytes)
    else:
        raise TypeError("unsupported OCSP signature")


def check_ocsp_staple(
    data: bytes,
    leaf: x509.Certificate,
    issuer: x509.Certificate | None,
    now: datetime.datetime | None = None,
    check_signature: bool = True,
) -> str | None:
    """
    Check a stapled OCSP response for C{leaf}; L{None} if it is good, else why not.

    @param check_signature: Whether to require the issuer's (or its delegated
        responder's) signature; without it, C{issuer} may be L{None}.
    """
    if not data:
        return "the server stapled no OCSP response"
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        return "the stapled OCSP response is malformed"
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"the stapled OCSP response says {response.response_status.name}"
    if response.serial_number != leaf.serial_number:
        return "the stapled OCSP response is about another certificate"
    if check_signature and (issuer is None or not _responder_is_trusted(response, issuer)):
        return "the stapled OCSP response is not signed by the certificate's issuer"
    now = now or datetime.datetime.now(datetime.UTC)
    if response.this_update_utc > now + _SKEW:
        return "the stapled OCSP response is not valid yet"
    if response.next_update_utc is not None and response.next_update_utc < now:
        return "the stapled OCSP response has expired"
    if response.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        return "certificate revoked (stapled OCSP response)"
    if response.certificate_status is not ocsp.OCSPCertStatus.GOOD:
        return "the stapled OCSP response does not know the certificate"
    return None
