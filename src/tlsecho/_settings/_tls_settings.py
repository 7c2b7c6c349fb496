"""
The TLS settings value object: what was asked for, validated, for one TLS peer.

L{TLSSettings} names the files (certificate chain, key, CA bundles, CRLs, SNI
certificates) and the policy (profile, verification, authorization, pins,
ciphers, protocol versions, ALPN).  It holds only those requested values; the
files' contents are a separate value, L{tlsecho._settings._material.Material}, made by
L{Material.load <tlsecho._settings._material.Material.load>}, which the connection
creators call (see L{tlsecho.server_creator} and L{tlsecho.client_creator}).

Decision: constructing a L{TLSSettings} still loads its files once, to check
them, and keeps nothing of what it read.  Library users and the command line
rely on C{TLSSettings(certificate=missing)} failing at once with a
L{ConfigurationError}, before anything listens.  What is checked without files
(types, versions and ciphers, pins, allow rules, ALPN names, invalid
combinations) is checked first.  Checks that depend on the side using the
settings are L{TLSSettings.check_for_server} and L{TLSSettings.check_for_client}
(made in L{tlsecho._settings._side_checks}); C{verify}'s per-side default is resolved
only by L{TLSSettings.verify_for}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from twisted.internet.ssl import TLSVersion

from . import _side_checks
from ._errors import ConfigurationError
from ._identity import AllowList, parse_pin
from ._options import Side
from ._profiles import INTERMEDIATE_CIPHERS, TLS_VERSIONS, Profile, version_name
from ._resolution import TLSPolicy, resolve_policy
from ._setting_values import (
    CONVERSIONS,
    SNICertificate,
    VerifyMode,
    as_path,
    as_paths,
    as_strings,
    parse_tls_version,
)

__all__ = [
    "DEFAULT_CIPHERS",
    "TLS_VERSIONS",
    "SNICertificate",
    "TLSSettings",
    "TLSVersion",
    "VerifyMode",
    "parse_tls_version",
    "version_name",
]

#: The default TLS 1.2 cipher string: ECDHE with AEAD ciphers only (the
#: "intermediate" profile's list).
DEFAULT_CIPHERS = ":".join(INTERMEDIATE_CIPHERS)


#: What C{verify=None} means on each side: the server asks for no client
#: certificate, the client verifies the server's chain and host name.
_DEFAULT_VERIFY = {Side.SERVER: VerifyMode.NONE, Side.CLIENT: VerifyMode.REQUIRED}


@dataclass(frozen=True)
class TLSSettings:
    """
    Everything that decides how one side of a TLS connection behaves.

    Each value is checked when the object is made, and every file it names is
    read once to check it (see the module docstring), so holding a
    L{TLSSettings} means holding a valid configuration.  Paths may be given as
    strings; they are stored as L{Path}.

    @ivar certificate: PEM file with the certificate first, then its
        intermediates in order.  Required on the server; on the client, the
        certificate for mutual TLS.
    @ivar private_key: PEM file with the private key; the C{certificate} file
        when not given.
    @ivar key_passphrase_file: File holding the passphrase of an encrypted key.
    @ivar ca: PEM files of the CA certificates to trust for the peer.
    @ivar verify: The verification policy; L{None} means the safe default of the
        side that uses it (see L{verify_for}).
    @ivar profile: The Mozilla-style policy profile the next five refine.
    @ivar ciphers: OpenSSL cipher string narrowing the profile's TLS 1.2
        ciphers; L{None} for all of them.
    @ivar tls13_ciphers: TLS 1.3 suites (C{:}-separated) narrowing the
        profile's three; L{None} for all of them.
    @ivar groups: Key exchange groups (C{:}-separated, most preferred first)
        narrowing the profile's; L{None} for all the linked OpenSSL has.
    @ivar min_tls: The lowest protocol version accepted; L{None}: the profile's.
    @ivar max_tls: The highest protocol version offered; L{None}: TLS 1.3.
    @ivar allow_cn: Server: authorize client certificates with this subject CN.
    @ivar allow_dns: Server: ... with this SAN DNS name.
    @ivar allow_uri: Server: ... with this SAN URI.
    @ivar allow_spki: Server: ... with this SHA-256 SPKI pin (base64 or hex).
    @ivar pin_spki: Client: the server's key must have one of these SPKI pins.
    @ivar sni: Server: more certificates, chosen by the name a client asks for.
    @ivar sni_strict: Server: refuse names no certificate is for.
    @ivar alpn: Application protocols for ALPN, most preferred first.
    @ivar crl: CRL files (PEM or DER) the peer's certificate is checked against.
    @ivar ocsp_response: Server: DER OCSP response for C{certificate}, stapled.
    @ivar require_ocsp_staple: Client: insist on a good stapled OCSP response.
    @ivar keylog_file: Append TLS secrets here (NSS key log format); debugging.
        An existing file must be the user's own, private to them (mode 0600).
    @ivar ticket_key_file: Server: 80 bytes of session-ticket keys shared by
        every process that should resume the others' sessions.

    @raise ConfigurationError: naming the option, the file and the reason, for
        any invalid setting.
    """

    certificate: Path | None = None
    private_key: Path | None = None
    key_passphrase_file: Path | None = None
    ca: tuple[Path, ...] = ()
    verify: VerifyMode | None = None
    profile: Profile = Profile.INTERMEDIATE
    ciphers: str | None = None
    tls13_ciphers: str | None = None
    groups: str | None = None
    min_tls: TLSVersion | None = None
    max_tls: TLSVersion | None = None
    allow_cn: tuple[str, ...] = ()
    allow_dns: tuple[str, ...] = ()
    allow_uri: tuple[str, ...] = ()
    allow_spki: tuple[str, ...] = ()
    pin_spki: tuple[str, ...] = ()
    sni: tuple[SNICertificate, ...] = ()
    sni_strict: bool = False
    alpn: tuple[str, ...] = ()
    crl: tuple[Path, ...] = ()
    ocsp_response: Path | None = None
    require_ocsp_staple: bool = False
    keylog_file: Path | None = None
    ticket_key_file: Path | None = None

    def __post_init__(self) -> None:
        self._normalise()
        # Resolving the policy checks versions and ciphers.
        self.policy  # noqa: B018
        if self.key_passphrase_file is not None and self.certificate is None:
            raise ConfigurationError("--key-passphrase-file", "needs --cert and --key")
        if self.private_key is not None and self.certificate is None:
            raise ConfigurationError(
                "--key", "needs --cert: a key alone cannot be served", self.private_key
            )
        # Parsing the rules and the pins checks them.
        self.allowed, self.pins  # noqa: B018
        if self.ocsp_response is not None and self.certificate is None:
            raise ConfigurationError("--ocsp-response", "needs --cert")
        for value in self.alpn:
            if not value or len(value.encode()) > 255:
                raise ConfigurationError(
                    "--alpn", f"{value!r} is not a protocol name (1 to 255 bytes)"
                )
        from ._material import Material  # made from settings: imported late

        Material.load(self)  # fail now on a bad file; nothing read is kept

    def _normalise(self) -> None:
        """Store each field as its declared type (paths given as strings, lists)."""
        for field in dataclasses.fields(self):
            convert = CONVERSIONS.get(str(field.type))
            if convert is not None:
                object.__setattr__(self, field.name, convert(getattr(self, field.name)))

    @cached_property
    def policy(self) -> TLSPolicy:
        """
        The resolved L{TLSPolicy}: versions, ciphers and groups.
        """
        return resolve_policy(
            self.profile,
            self.ciphers,
            self.min_tls,
            self.max_tls,
            groups=self.groups,
            tls13_ciphers=self.tls13_ciphers,
        )

    @cached_property
    def allowed(self) -> AllowList:
        """
        The client authorization rules of the C{allow_*} fields.
        """
        return AllowList.parse(
            self.allow_cn, self.allow_dns, self.allow_uri, self.allow_spki
        )

    @cached_property
    def pins(self) -> frozenset[bytes]:
        """
        The decoded C{pin_spki} digests.
        """
        return frozenset(parse_pin(p, "--pin-spki") for p in self.pin_spki)

    def verify_for(self, side: Side) -> VerifyMode:
        """
        The verification policy on C{side} (L{Side.SERVER} or L{Side.CLIENT}):
        C{verify}, or that side's safe default when it is L{None}.
        """
        return self.verify or _DEFAULT_VERIFY[side]

    def check_for_server(self) -> None:
        """
        Refuse settings a server could never complete a handshake with, that ask
        for client checks without the means to do them, or that hold client options.

        @raise ConfigurationError: naming the option.
        """
        _side_checks.check_for_server(self)

    def check_for_client(self) -> None:
        """
        Refuse the server's C{verify} policy C{optional} and server-only options.

        @raise ConfigurationError: naming the option.
        """
        _side_checks.check_for_client(self)

    def replace(self, **changes: object) -> TLSSettings:
        """
        A copy with C{changes} applied, checked again like a new one (its
        files included).

        @raise ConfigurationError: if the result would be invalid.
        """
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_strings(
        cls,
        *,
        certificate: str | None = None,
        private_key: str | None = None,
        key_passphrase_file: str | None = None,
        ca: Iterable[str] = (),
        verify: str | None = None,
        profile: str | None = None,
        ciphers: str | None = None,
        tls13_ciphers: str | None = None,
        groups: str | None = None,
        min_tls: str | None = None,
        max_tls: str | None = None,
        allow_cn: Iterable[str] = (),
        allow_dns: Iterable[str] = (),
        allow_uri: Iterable[str] = (),
        allow_spki: Iterable[str] = (),
        pin_spki: Iterable[str] = (),
        sni: Iterable[str] = (),
        sni_strict: bool = False,
        alpn: Iterable[str] = (),
        crl: Iterable[str] = (),
        ocsp_response: str | None = None,
        require_ocsp_staple: bool = False,
        keylog_file: str | None = None,
        ticket_key_file: str | None = None,
    ) -> TLSSettings:
        """
        Build settings from option values as a user typed them.

        This is the edge where strings become typed values; C{None} or an
        empty sequence means the option was not given.

        @raise ConfigurationError: for any invalid value.
        """
        return cls(
            certificate=as_path(certificate),
            private_key=as_path(private_key),
            key_passphrase_file=as_path(key_passphrase_file),
            ca=as_paths(ca),
            verify=None if verify is None else VerifyMode.parse(verify),
            profile=Profile.INTERMEDIATE if profile is None else Profile.parse(profile),
            ciphers=ciphers,
            tls13_ciphers=tls13_ciphers,
            groups=groups,
            min_tls=None if min_tls is None else parse_tls_version(min_tls, "--min-tls"),
            max_tls=None if max_tls is None else parse_tls_version(max_tls, "--max-tls"),
            allow_cn=as_strings(allow_cn),
            allow_dns=as_strings(allow_dns),
            allow_uri=as_strings(allow_uri),
            allow_spki=as_strings(allow_spki),
            pin_spki=as_strings(pin_spki),
            sni=tuple(SNICertificate.parse(entry) for entry in as_strings(sni)),
            sni_strict=sni_strict,
            alpn=as_strings(alpn),
            crl=as_paths(crl),
            ocsp_response=as_path(ocsp_response),
            require_ocsp_staple=require_ocsp_staple,
            keylog_file=as_path(keylog_file),
            ticket_key_file=as_path(ticket_key_file),
        )
