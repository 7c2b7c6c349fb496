"""
TLS policy profiles after Mozilla's Server Side TLS guidelines (version 5.8):
their protocol versions, cipher lists, TLS 1.3 suites and key exchange groups.

C{intermediate} (the default) allows TLS 1.2 and 1.3 with ECDHE key exchange and
AEAD ciphers only; C{modern} allows TLS 1.3 only; C{old}, for testing legacy
peers and never a default, allows TLS 1.0 to 1.3 with Mozilla's old suites
(CBC, and RSA key exchange) at OpenSSL security level 0.  All use the groups
X25519MLKEM768 (hybrid post-quantum), X25519, P-256 and P-384, less any the
linked OpenSSL lacks.  L{tlsecho._settings._resolution} narrows a profile by explicit
settings; L{tlsecho._tls._policy} applies the result to an OpenSSL context.
See U{https://wiki.mozilla.org/Security/Server_Side_TLS}.
"""

from __future__ import annotations

import enum

from twisted.internet.ssl import TLSVersion

from ._values import parse_word

__all__ = [
    "GROUPS",
    "GROUP_ALIASES",
    "INTERMEDIATE_CIPHERS",
    "OLD_CIPHERS",
    "OLD_SECURITY_LEVEL",
    "PROFILE_GROUPS",
    "TLS13_SUITES",
    "TLS13_SUITE_NAMES",
    "TLS_VERSIONS",
    "VERSION_ORDER",
    "Profile",
    "group_label",
    "is_legacy",
    "version_name",
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
GROUP_ALIASES = {
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
VERSION_ORDER = list(TLS_VERSIONS.values())


def version_name(version: TLSVersion) -> str:
    """
    The command-line spelling of C{version}, such as C{"1.3"}.
    """
    return {v: k for k, v in TLS_VERSIONS.items()}[version]


def is_legacy(version: TLSVersion) -> bool:
    """
    Whether C{version} is below TLS 1.2 (only C{--profile old} allows it).
    """
    return VERSION_ORDER.index(version) < VERSION_ORDER.index(TLSVersion.TLSv1_2)


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
        return parse_word(cls, text, option, "profile")


def group_label(name: object) -> str:
    """
    The profile's spelling of a negotiated group name (OpenSSL may say
    C{secp256r1} for C{prime256v1}); C{"none"} for no group, C{"other"} for a
    group outside the profile.  Total: the labels form a fixed set.
    """
    if not isinstance(name, str) or not name:
        return "none"
    return GROUP_ALIASES.get(name.lower(), "other")
