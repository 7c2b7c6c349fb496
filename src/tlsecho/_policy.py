"""
TLS policy profiles after Mozilla's Server Side TLS guidelines (version 5.8),
and how a profile, refined by explicit settings, becomes the versions, ciphers
and groups of a context.

C{intermediate} (the default) allows TLS 1.2 and 1.3 with ECDHE key exchange and
AEAD ciphers only; C{modern} allows TLS 1.3 only; C{old}, for testing legacy
peers and never a default, allows TLS 1.0 to 1.3 with Mozilla's old suites
(CBC, and RSA key exchange) at OpenSSL security level 0.  All use the groups
X25519MLKEM768 (hybrid post-quantum), X25519, P-256 and P-384, less any the
linked OpenSSL lacks.  Explicit cipher, suite and group lists can only narrow
the profile's, never widen it, so no flag can turn on a weak cipher.
See U{https://wiki.mozilla.org/Security/Server_Side_TLS}.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field

from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from ._errors import ConfigurationError
from ._openssl_internals import set_groups

__all__ = [
    "Profile",
    "TLSPolicy",
    "apply_policy",
    "available_groups",
    "group_label",
    "resolve_policy",
]

#: The TLS 1.2 suites of Mozilla "intermediate" without the DHE ones, which
#: would need custom Diffie-Hellman parameters: ECDHE + AEAD only.
INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
#: The TLS 1.0-1.2 suites of Mozilla "old", again without the DHE ones; those
#: the linked OpenSSL lacks (3DES, in OpenSSL 4) are left out when resolved.
OLD_CIPHERS = (
    *INTERMEDIATE_CIPHERS,
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
)
#: Mozilla's TLS 1.3 suites (all of OpenSSL's defaults, all AEAD), in order.
TLS13_SUITE_NAMES = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)
TLS13_SUITES = ":".join(TLS13_SUITE_NAMES)
#: Mozilla's key exchange groups (guidelines 5.8), most preferred first, as
#: OpenSSL names them.
PROFILE_GROUPS = ("X25519MLKEM768", "X25519", "prime256v1", "secp384r1")
GROUPS = ":".join(PROFILE_GROUPS)
#: Other spellings of the profile's groups (OpenSSL's, the NIST and TLS
#: names), lower case, to the profile's spelling.
_GROUP_ALIASES = {
    **{name.lower(): name for name in PROFILE_GROUPS},
    "p-256": "prime256v1",
    "secp256r1": "prime256v1",
    "p-384": "secp384r1",
}
#: The OpenSSL security level of C{--profile old}: level 1 and above refuse
#: TLS 1.0 and 1.1 and SHA-1 signatures (Mozilla's old configuration sets 0).
OLD_SECURITY_LEVEL = 0

#: The protocol versions tlsecho knows, as spelt on the command line, in order;
#: 1.0 and 1.1 only with C{--profile old}.
TLS_VERSIONS: dict[str, TLSVersion] = {
    "1.0": TLSVersion.TLSv1_0,
    "1.1": TLSVersion.TLSv1_1,
    "1.2": TLSVersion.TLSv1_2,
    "1.3": TLSVersion.TLSv1_3,
}
_ORDER = list(TLS_VERSIONS.values())
_OPENSSL_VERSIONS = {
    TLSVersion.TLSv1_0: SSL.TLS1_VERSION,
    TLSVersion.TLSv1_1: SSL.TLS1_1_VERSION,
    TLSVersion.TLSv1_2: SSL.TLS1_2_VERSION,
    TLSVersion.TLSv1_3: SSL.TLS1_3_VERSION,
}


def version_name(version: TLSVersion) -> str:
    """
    The command-line spelling of C{version}, such as C{"1.3"}.
    """
    return {v: k for k, v in TLS_VERSIONS.items()}[version]


def is_legacy(version: TLSVersion) -> bool:
    """
    Whether C{version} is below TLS 1.2 (only C{--profile old} allows it).
    """
    return _ORDER.index(version) < _ORDER.index(TLSVersion.TLSv1_2)


class Profile(enum.Enum):
    """
    A TLS policy profile: C{intermediate} (TLS 1.2 and 1.3), C{modern} (1.3
    only) or C{old} (1.0 to 1.3, for testing legacy peers).
    """

    INTERMEDIATE = "intermediate"
    MODERN = "modern"
    OLD = "old"

    @classmethod
    def parse(cls, text: str, option: str = "--profile") -> Profile:
        """
        Turn C{"intermediate"}, C{"modern"} or C{"old"} into a L{Profile}.

        @raise ConfigurationError: for anything else, naming C{option}.
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigurationError(
                option,
                f"unknown profile {text!r} (expected intermediate, modern or old)",
            ) from None


@functools.cache
def available_groups() -> tuple[str, ...]:
    """
    The profile's groups the linked OpenSSL has (X25519MLKEM768 needs 3.5 or
    later), most preferred first: each is tried on a scratch context.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    return tuple(name for name in PROFILE_GROUPS if set_groups(context, name))


def group_label(name: object) -> str:
    """
    The profile's spelling of a negotiated group name (OpenSSL may say
    C{secp256r1} for C{prime256v1}); C{"none"} for no group, C{"other"} for a
    group outside the profile.  Total: the labels form a fixed set.
    """
    if not isinstance(name, str) or not name:
        return "none"
    return _GROUP_ALIASES.get(name.lower(), "other")


@dataclass(frozen=True)
class TLSPolicy:
    """
    The resolved protocol policy of a context.

    @ivar min_tls: Lowest version accepted.
    @ivar max_tls: Highest version offered.
    @ivar ciphers: OpenSSL cipher string for TLS 1.2 and below (empty when
        they are off).
    @ivar tls13_suites: TLS 1.3 cipher suites.
    @ivar groups: Key exchange groups, most preferred first.
    @ivar groups_unavailable: The profile's groups the linked OpenSSL lacks,
        left out of C{groups}.
    @ivar security_level: The OpenSSL security level to set, if not OpenSSL's
        default (C{--profile old}: 0).
    """

    min_tls: TLSVersion
    max_tls: TLSVersion
    ciphers: str
    tls13_suites: str = TLS13_SUITES
    groups: str = field(default_factory=lambda: ":".join(available_groups()))
    groups_unavailable: tuple[str, ...] = ()
    security_level: int | None = None


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


def _names(text: str) -> list[str]:
    """The names of a C{:}- or C{,}-separated list, without duplicates."""
    names: list[str] = []
    for name in text.replace(",", ":").split(":"):
        if name.strip() and name.strip() not in names:
            names.append(name.strip())
    return names


def _resolve_groups(groups: str | None) -> tuple[str, tuple[str, ...]]:
    """
    The groups to use, and the profile's groups the linked OpenSSL lacks.

    @raise ConfigurationError: for C{groups} naming a group outside the
        profile or one the linked OpenSSL lacks, or naming none.
    """
    available = available_groups()
    unavailable = tuple(name for name in PROFILE_GROUPS if name not in available)
    if groups is None:
        return ":".join(available), unavailable
    chosen: list[str] = []
    for name in _names(groups):
        canonical = _GROUP_ALIASES.get(name.lower())
        if canonical is None:
            raise ConfigurationError(
                "--groups",
                f"{name!r} is not a group of the profile "
                f"(allowed: {', '.join(PROFILE_GROUPS)})",
            )
        if canonical not in available:
            raise ConfigurationError(
                "--groups",
                f"{canonical} is not available in the linked "
                f"{SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode('ascii', 'replace')}"
                " (X25519MLKEM768 needs OpenSSL 3.5 or later)",
            )
        if canonical not in chosen:
            chosen.append(canonical)
    if not chosen:
        raise ConfigurationError("--groups", f"no group in {groups!r}")
    return ":".join(chosen), unavailable


def _resolve_tls13_suites(suites: str | None) -> str:
    """
    The TLS 1.3 suites to use: the profile's, or those of C{suites}, in its
    order.

    @raise ConfigurationError: for a suite outside the profile, or none.
    """
    if suites is None:
        return TLS13_SUITES
    chosen = []
    for name in _names(suites):
        if name.upper() not in TLS13_SUITE_NAMES:
            raise ConfigurationError(
                "--tls13-ciphers",
                f"{name!r} is not a TLS 1.3 suite of the profile "
                f"(allowed: {', '.join(TLS13_SUITE_NAMES)})",
            )
        chosen.append(name.upper())
    if not chosen:
        raise ConfigurationError("--tls13-ciphers", f"no suite in {suites!r}")
    return ":".join(dict.fromkeys(chosen))


def resolve_policy(
    profile: Profile = Profile.INTERMEDIATE,
    ciphers: str | None = None,
    min_tls: TLSVersion | None = None,
    max_tls: TLSVersion | None = None,
    groups: str | None = None,
    tls13_ciphers: str | None = None,
) -> TLSPolicy:
    """
    The policy of C{profile}, refined by explicit settings.

    @param ciphers: Narrows the profile's TLS 1.2 (and below) ciphers to
        those it selects.
    @param min_tls: Replaces the profile's minimum version.
    @param max_tls: Replaces the profile's maximum version.
    @param groups: Narrows the profile's groups (C{:}-separated, in the order
        to prefer them).
    @param tls13_ciphers: Narrows the profile's TLS 1.3 suites.
    @raise ConfigurationError: for an unknown cipher string, group or suite,
        a minimum above the maximum, a version below 1.2 outside the old
        profile, or a combination that leaves no usable cipher.
    """
    defaults = {
        Profile.INTERMEDIATE: TLSVersion.TLSv1_2,
        Profile.MODERN: TLSVersion.TLSv1_3,
        Profile.OLD: TLSVersion.TLSv1_0,
    }
    low = min_tls or defaults[profile]
    high = max_tls or TLSVersion.TLSv1_3
    if profile is not Profile.OLD:
        for option, version in (("--min-tls", min_tls), ("--max-tls", max_tls)):
            if version is not None and is_legacy(version):
                raise ConfigurationError(
                    option,
                    f"TLS {version_name(version)} is below what --profile "
                    f"{profile.value} allows (1.2); use --profile old to test "
                    "legacy peers",
                )
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
    profile_ciphers = OLD_CIPHERS if profile is Profile.OLD else INTERMEDIATE_CIPHERS
    known = _selected(":".join(profile_ciphers)) if profile is Profile.OLD else None
    allowed = [name for name in profile_ciphers if known is None or name in known]
    if ciphers is not None:
        wanted = _selected(ciphers)
        allowed = [name for name in wanted if name in allowed]
        if not allowed and low is not TLSVersion.TLSv1_3:
            what = (
                "a cipher of Mozilla's old profile"
                if profile is Profile.OLD
                else "ECDHE with AES-GCM or ChaCha20-Poly1305"
            )
            raise ConfigurationError(
                "--ciphers",
                f"{ciphers!r} leaves no usable TLS 1.2 cipher: only {what} is "
                f"allowed ({':'.join(profile_ciphers)})",
            )
    if low is TLSVersion.TLSv1_3:
        allowed = []
    group_list, unavailable = _resolve_groups(groups)
    return TLSPolicy(
        min_tls=low,
        max_tls=high,
        ciphers=":".join(allowed),
        tls13_suites=_resolve_tls13_suites(tls13_ciphers),
        groups=group_list,
        groups_unavailable=unavailable,
        security_level=OLD_SECURITY_LEVEL if profile is Profile.OLD else None,
    )


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
    if policy.security_level is not None and policy.ciphers:
        # Twisted set the list without the level (its cipher objects drop it).
        context.set_cipher_list(
            f"{policy.ciphers}:@SECLEVEL={policy.security_level}".encode("ascii")
        )
    context.set_tls13_ciphersuites(policy.tls13_suites.encode("ascii"))
    if not set_groups(context, policy.groups):
        raise ConfigurationError(
            "--groups", f"OpenSSL does not support the groups {policy.groups}"
        )
