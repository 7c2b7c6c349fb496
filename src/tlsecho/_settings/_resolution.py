"""
How a policy profile, refined by explicit settings, becomes the versions,
ciphers and groups of a context: L{resolve_policy} and its L{TLSPolicy}.

Explicit cipher, suite and group lists can only narrow the profile's, never
widen it, so no flag can turn on a weak cipher.  What only the linked OpenSSL
knows (which ciphers a cipher string selects, which groups it has) is asked of
L{tlsecho._settings._tls_library.linked}, so that settings fail when they are made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.ssl import TLSVersion

from ._errors import ConfigurationError
from ._profiles import (
    GROUP_ALIASES,
    INTERMEDIATE_CIPHERS,
    OLD_CIPHERS,
    OLD_SECURITY_LEVEL,
    PROFILE_GROUPS,
    TLS13_SUITE_NAMES,
    TLS13_SUITES,
    VERSION_ORDER,
    Profile,
    is_legacy,
    version_name,
)
from ._tls_library import linked

__all__ = ["TLSPolicy", "resolve_policy"]


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
    groups: str = field(default_factory=lambda: ":".join(linked().available_groups()))
    groups_unavailable: tuple[str, ...] = ()
    security_level: int | None = None


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
    available = linked().available_groups()
    unavailable = tuple(name for name in PROFILE_GROUPS if name not in available)
    if groups is None:
        return ":".join(available), unavailable
    chosen: list[str] = []
    for name in _names(groups):
        canonical = GROUP_ALIASES.get(name.lower())
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
                f"{linked().name()}"
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
    if VERSION_ORDER.index(low) > VERSION_ORDER.index(high):
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
    known = (
        linked().select_ciphers(":".join(profile_ciphers))
        if profile is Profile.OLD
        else None
    )
    allowed = [name for name in profile_ciphers if known is None or name in known]
    if ciphers is not None:
        wanted = linked().select_ciphers(ciphers)
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
