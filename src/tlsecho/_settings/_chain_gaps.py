"""
A served chain that stops short of its intermediate CA: found at start, said
in one warning line.

A server sends the chain in its certificate file (OpenSSL completes it from
the C{--ca} certificates, if the issuer is there); a client that holds only
the root fails with "unknown CA" when an intermediate between them is not
sent.  From the leaf alone, an issuing intermediate and a private root that
issued the leaf directly (tlsecho's development CA, trustme's CAs, a small
internal PKI) look the same, and the second is a correct setup: so the
warning is given only when the missing issuer is known to be an
intermediate --

  - its certificate is one tlsecho can see (another served chain, the
    platform's CA file) and is not self-issued; or
  - it is not found anywhere, and the leaf names where its issuer's
    certificate is published (Authority Information Access, "CA Issuers"),
    as public CAs do for the intermediates they issue from (they never
    issue server certificates from a root), unless the platform's CA file
    holds it as a root.

A leaf whose issuer is nowhere to be seen and that names no issuer URL is
taken as issued by a private root the clients trust: no warning (the limit
of what can be known without asking the network).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from ._pem import describe
from ._text import printable

__all__ = ["chain_gap", "platform_ca_certificates"]

#: A certificate tlsecho can see, with where it is (for the warning's words).
Seen = tuple[str, x509.Certificate]


def platform_ca_certificates() -> list[Seen]:
    """
    The certificates of the platform's CA file (OpenSSL's default, or
    C{$SSL_CERT_FILE}); none if it cannot be read.
    """
    try:
        blobs = ssl.create_default_context().get_ca_certs(binary_form=True)
    except (OSError, ssl.SSLError):
        return []
    found = []
    for blob in blobs:
        with contextlib.suppress(ValueError):
            found.append(
                ("the platform's CA file", x509.load_der_x509_certificate(bytes(blob)))
            )
    return found


def _key_id(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes | None:
    """The authority or subject key identifier of C{certificate}, if it has one."""
    try:
        value = certificate.extensions.get_extension_for_class(kind).value
    except Exception:  # absent, unparseable, duplicated: nothing to go by
        return None
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    return None


def _issued(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """
    Whether C{issuer} is, by name and (when both say) key identifier, the
    certificate of C{certificate}'s issuer.
    """
    if issuer.subject != certificate.issuer:
        return False
    authority = _key_id(certificate, x509.AuthorityKeyIdentifier)
    subject = _key_id(issuer, x509.SubjectKeyIdentifier)
    return authority is None or subject is None or authority == subject


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except Exception:  # absent, unparseable, duplicated: nothing to go by
        return False
    return constraints.value.ca


def _issuer_urls(certificate: x509.Certificate) -> list[str]:
    """Where C{certificate} says its issuer's certificate is published."""
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
    except Exception:  # absent, unparseable, duplicated: nothing to go by
        return []
    return [
        str(entry.access_location.value)
        for entry in access
        if entry.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(entry.access_location, x509.UniformResourceIdentifier)
    ]


def chain_gap(
    option: str,
    path: Path | None,
    chain: Sequence[x509.Certificate],
    seen: Sequence[Seen],
    completing: Sequence[x509.Certificate] = (),
    platform: Callable[[], Sequence[Seen]] = platform_ca_certificates,
) -> str | None:
    """
    The warning for a served C{chain} (from C{path}, given with C{option})
    that leaves out an intermediate CA, or L{None}.

    @param seen: The certificates of the other served chains, with where
        each is.
    @param completing: The certificates OpenSSL completes a chain from (the
        C{--ca} ones): an issuer there is sent.
    @param platform: The platform's CA certificates; called only when
        C{seen} does not settle it and the leaf names an issuer URL.
    """
    if not chain:
        return None
    end = chain[-1]
    if end.issuer == end.subject or any(_issued(end, c) for c in completing):
        return None  # the file goes up to a root, or OpenSSL sends the issuer
    candidates = [(where, c) for where, c in seen if _issued(end, c)]
    urls = _issuer_urls(end) if not _is_ca(end) else []
    if not candidates and urls:
        candidates = [(where, c) for where, c in platform() if _issued(end, c)]
    if any(c.issuer == c.subject for _, c in candidates):
        return None  # issued by a root that tlsecho can see
    if candidates:
        where = candidates[0][0]
        why = f"its certificate is in {where}, not self-signed"
    elif urls:
        why = f"the certificate says it is published at {printable(urls[0])}"
    else:
        return None  # perhaps a private root: nothing to go by
    # Names and URLs are the certificate's text: escaped for one log line.
    issuer = printable(end.issuer.rfc4514_string()) or "(empty issuer)"
    named = f"{option} {path}" if path is not None else option
    stops = describe(end)
    return (
        f"{named}: the chain stops at {stops}, whose issuer {issuer} is an "
        f"intermediate CA ({why}) that is not in the file: clients that do not "
        f'already hold {issuer} will fail with "unknown CA"; append its '
        f"certificate to the file, after {stops}"
    )
