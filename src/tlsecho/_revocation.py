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
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ._errors import ConfigurationError
from ._pem import read_file

__all__ = ["check_ocsp_staple", "load_crl", "load_ocsp_response"]

#: How far a response's this_update may lie in the future (clock skew).
_SKEW = datetime.timedelta(minutes=5)


def load_crl(path: Path, option: str = "--crl") -> x509.CertificateRevocationList:
    """
    Load a CRL in PEM or DER form.

    @raise ConfigurationError: if the file is missing or holds no CRL.
    """
    data = read_file(path, option)
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise ConfigurationError(
            option, "holds no certificate revocation list (PEM or DER)", path
        ) from None


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
