"""
TLS policy profiles after Mozilla's Server Side TLS guidelines, and how a profile,
refined by explicit settings, becomes the versions, ciphers and groups of a context.

C{intermediate} (the default) allows TLS 1.2 and 1.3 with ECDHE key exchange and
AEAD ciphers only; C{modern} allows TLS 1.3 only.  Both use the groups X25519,
P-256 and P-384.  An explicit cipher string can only narrow the profile's TLS 1.2
list, never widen it, so no flag can turn on a weak cipher.
See U{https://wiki.mozilla.org/Security/Server_Side_TLS}.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from ._errors import ConfigurationError
from ._openssl_internals import set_groups

__all__ = ["Profile", "TLSPolicy", "apply_policy", "resolve_policy"]

#: The TLS 1.2 suites of Mozilla "intermediate" (version 5.7) without the DHE
#: ones, which would need custom Diffie-Hellman parameters: ECDHE + AEAD only.
INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
#: Mozilla's TLS 1.3 suites (all of OpenSSL's defaults, all AEAD).
TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#: Mozilla's key exchange groups.
GROUPS = "X25519:P-256:P-384"

#: The protocol versions tlsecho accepts, as spelt on the command line, in order.
TLS_VERSIONS: dict[str, TLSVersion] = {"1.2": TLSVersion.TLSv1_2, "1.3": TLSVersion.TLSv1_3}
_ORDER = list(TLS_VERSIONS.values())
_OPENSSL_VERSIONS = {
    TLSVersion.TLSv1_2: SSL.TLS1_2_VERSION,
    TLSVersion.TLSv1_3: SSL.TLS1_3_VERSION,
}


def version_name(version: TLSVersion) -> str:
    """
    The command-line spelling of C{version}, such as C{"1.3"}.
    """
    return {v: k for k, v in TLS_VERSIONS.items()}[version]


class Profile(enum.Enum):
    """
    A TLS policy profile: C{intermediate} (TLS 1.2 and 1.3) or C{modern} (1.3 only).
    """

    INTERMEDIATE = "intermediate"
    MODERN = "modern"

    @classmethod
    def parse(cls, text: str, option: str = "--profile") -> Profile:
        """
        Turn C{"intermediate"} or C{"modern"} into a L{Profile}.

        @raise ConfigurationError: for anything else, naming C{option}.
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigurationError(
                option, f"unknown profile {text!r} (expected intermediate or modern)"
            ) from None


@dataclass(frozen=True)
class TLSPolicy:
    """
    The resolved protocol policy of a context.

    @ivar min_tls: Lowest version accepted.
    @ivar max_tls: Highest version offered.
    @ivar ciphers: OpenSSL cipher string for TLS 1.2 (empty when TLS 1.2 is off).
    @ivar tls13_suites: TLS 1.3 cipher suites.
    @ivar groups: Key exchange groups, most preferred first.
    """

    min_tls: TLSVersion
    max_tls: TLSVersion
    ciphers: str
    tls13_suites: str = TLS13_SUITES
    groups: str = GROUPS


def _selected(ciphers: str) -> list[str]:
    """
    The TLS 1.2-and-below ciphers OpenSSL selects from C{ciphers}, in order.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        raise ConfigurationError(
            "--ciphers",
            f"OpenSSL knows no cipher in {ciphers!r} "
            "(see 'openssl ciphers -v' for the names)",
        ) from None
    names = SSL.Connection(context, None).get_cipher_list()
    return [name for name in names if not name.startswith("TLS_")]


def resolve_policy(
    profile: Profile = Profile.INTERMEDIATE,
    ciphers: str | None = None,
    min_tls: TLSVersion | None = None,
    max_tls: TLSVersion | None = None,
) -> TLSPolicy:
    """
    The policy of C{profile}, refined by explicit settings.

    @param ciphers: Narrows the profile's TLS 1.2 ciphers to those it selects.
    @param min_tls: Replaces the profile's minimum version.
    @param max_tls: Replaces the profile's maximum version.
    @raise ConfigurationError: for an unknown cipher string, a minimum above
        the maximum, or a combination that leaves no usable cipher.
    """
    low = min_tls or (
        TLSVersion.TLSv1_3 if profile is Profile.MODERN else TLSVersion.TLSv1_2
    )
    high = max_tls or TLSVersion.TLSv1_3
    if _ORDER.index(low) > _ORDER.index(high):
        if min_tls is None:
            raise ConfigurationError(
                "--max-tls",
                f"{version_name(high)} is below the minimum {version_name(low)} "
                f"of --profile {profile.value}",
            )
        raise ConfigurationError(
            "--min-tls",
            f"{version_name(low)} is above --max-tls {version_name(high)}",
        )
    allowed = list(INTERMEDIATE_CIPHERS)
    if ciphers is not None:
        wanted = _selected(ciphers)
        allowed = [name for name in wanted if name in INTERMEDIATE_CIPHERS]
        if not allowed and low is TLSVersion.TLSv1_2:
            raise ConfigurationError(
                "--ciphers",
                f"{ciphers!r} leaves no usable TLS 1.2 cipher: only ECDHE with AES-GCM "
                f"or ChaCha20-Poly1305 is allowed ({':'.join(INTERMEDIATE_CIPHERS)})",
            )
    if low is TLSVersion.TLSv1_3:
        allowed = []
    return TLSPolicy(min_tls=low, max_tls=high, ciphers=":".join(allowed))


def apply_policy(context: SSL.Context, policy: TLSPolicy) -> None:
    """
    Configure a new context for C{policy}, with the options every tlsecho
    context has: no compression, no renegotiation, server cipher preference.

    Twisted's L{CertificateOptions} already sets versions, the TLS 1.2 cipher
    list, no compression and server preference; this adds what it cannot.
    """
    context.set_min_proto_version(_OPENSSL_VERSIONS[policy.min_tls])
    context.set_max_proto_version(_OPENSSL_VERSIONS[policy.max_tls])
    context.set_options(
        SSL.OP_NO_COMPRESSION
        | SSL.OP_CIPHER_SERVER_PREFERENCE
        # Renegotiation is a denial-of-service vector, and TLS 1.3 dropped it.
        | SSL.OP_NO_RENEGOTIATION
    )
    context.set_tls13_ciphersuites(policy.tls13_suites.encode("ascii"))
    if not set_groups(context, policy.groups):
        raise ConfigurationError(
            "--groups", f"OpenSSL does not support the groups {policy.groups}"
        )
