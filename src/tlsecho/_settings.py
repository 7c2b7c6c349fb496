"""
The TLS settings value object: one immutable, validated description of a TLS peer.

L{TLSSettings} names the files (certificate chain, key, CA bundles, CRLs, SNI
certificates) and the policy (profile, verification, authorization, pins,
ciphers, protocol versions, ALPN).  Constructing one reads and checks every file,
so an invalid setting fails at once with a L{ConfigurationError}; a valid one is
the single input from which both the server's and the client's connection
creators are built (see L{tlsecho.server_creator} and L{tlsecho.client_creator}).
To change a setting, or to re-read the files after they changed, use
L{TLSSettings.replace}.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from twisted.internet.ssl import TLSVersion

from . import _pem
from ._errors import ConfigurationError
from ._identity import AllowList, parse_pin
from ._policy import (
    INTERMEDIATE_CIPHERS,
    TLS_VERSIONS,
    Profile,
    TLSPolicy,
    resolve_policy,
    version_name,
)
from ._revocation import crl_problems, load_crls, load_ocsp_response
from ._tickets import load_ticket_keys

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

#: The warning C{--profile old} gives, at start and in C{tlsecho check}.
OLD_PROFILE_WARNING = (
    "--profile old: TLS 1.0 and 1.1, CBC and non-forward-secret ciphers are on, "
    "at OpenSSL security level 0; for testing legacy peers only"
)

#: A served certificate that expires within this is warned about.
EXPIRY_WARNING = datetime.timedelta(days=30)


def parse_tls_version(text: str, option: str) -> TLSVersion:
    """
    Turn C{"1.2"} or C{"1.3"} (or, for C{--profile old}, C{"1.0"} or
    C{"1.1"}) into a L{TLSVersion}.

    @raise ConfigurationError: for anything else, naming C{option}.
    """
    try:
        return TLS_VERSIONS[text.strip().removeprefix("TLSv").removeprefix("tls")]
    except KeyError:
        raise ConfigurationError(
            option,
            f"unknown TLS version {text!r} (expected 1.2 or 1.3; "
            "1.0 or 1.1 with --profile old)",
        ) from None


class VerifyMode(enum.Enum):
    """
    How a peer's certificate is checked.

    On the server it is the client-certificate policy: C{NONE} asks for none,
    C{OPTIONAL} verifies one if the client sends it, C{REQUIRED} refuses clients
    without a valid one.  On the client, C{REQUIRED} verifies the server's chain
    and host name, and C{NONE} (insecure) checks nothing.
    """

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"

    @classmethod
    def parse(cls, text: str, option: str = "--verify") -> VerifyMode:
        """
        Turn C{"none"}, C{"optional"} or C{"required"} into a L{VerifyMode}.

        @raise ConfigurationError: for anything else, naming C{option}.
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigurationError(
                option,
                f"unknown verify mode {text!r} (expected none, optional or required)",
            ) from None


@dataclass(frozen=True)
class SNICertificate:
    """
    A certificate served to clients that ask for C{name} with SNI.

    @ivar name: An exact host name, or a wildcard C{*.example.com} matching
        one label.
    @ivar certificate: PEM chain file.
    @ivar private_key: PEM key file; the chain file when L{None}.
    """

    name: str
    certificate: Path
    private_key: Path | None = None

    @classmethod
    def parse(cls, text: str, option: str = "--sni") -> SNICertificate:
        """
        Parse C{NAME=CERT[:KEY]}.

        @raise ConfigurationError: if there is no C{=} or no name.
        """
        name, sep, files = text.partition("=")
        if not sep or not name.strip() or not files:
            raise ConfigurationError(option, f"expected NAME=CERT[:KEY], got {text!r}")
        certificate, _, key = files.partition(":")
        return cls(name.strip().lower(), Path(certificate), Path(key) if key else None)

    def matches(self, servername: str) -> bool:
        """
        Whether a client asking for C{servername} gets this certificate.
        """
        servername = servername.lower().rstrip(".")
        if self.name.startswith("*."):
            head, _, rest = servername.partition(".")
            return bool(head) and rest == self.name[2:]
        return servername == self.name


def _paths(value: object) -> tuple[Path, ...]:
    """A tuple of paths from one path or several (strings accepted)."""
    if isinstance(value, str | Path):
        return (Path(value),)  # one file given on its own
    return tuple(Path(p) for p in value)  # type: ignore[attr-defined]


def _strings(value: object) -> tuple[str, ...]:
    """A tuple of strings from one string or several."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TLSSettings:
    """
    Everything that decides how one side of a TLS connection behaves.

    Every file is read and checked when the object is made, so holding a
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
        side that uses it: the server asks for no client certificate, and the
        client verifies the server's chain and host name.
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

    Loaded and resolved when made (not arguments):

    @ivar chain: The certificate chain (empty without C{certificate}).
    @ivar key: The private key (L{None} without C{certificate}).
    @ivar trusted: The CA certificates from every C{ca} file.
    @ivar policy: The resolved L{TLSPolicy} (versions, ciphers, groups).
    @ivar allowed: The client authorization rules.
    @ivar pins: The decoded C{pin_spki} digests.
    @ivar sni_identities: Each C{sni} entry with its chain and key.
    @ivar crls: The loaded CRLs.
    @ivar crl_files: Each C{crl} file with the CRLs it holds.
    @ivar ocsp_staple: The checked OCSP response bytes to staple.
    @ivar ticket_keys: The session-ticket keys read from C{ticket_key_file}.

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

    chain: tuple[x509.Certificate, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    key: _pem.TLSPrivateKey | None = field(
        init=False, repr=False, compare=False, default=None
    )
    trusted: tuple[x509.Certificate, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    policy: TLSPolicy = field(init=False, repr=False, compare=False, default=None)  # type: ignore[assignment]
    allowed: AllowList = field(init=False, repr=False, compare=False, default=AllowList())
    pins: frozenset[bytes] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )
    sni_identities: tuple[
        tuple[SNICertificate, tuple[x509.Certificate, ...], _pem.TLSPrivateKey], ...
    ] = field(init=False, repr=False, compare=False, default=())
    crls: tuple[x509.CertificateRevocationList, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    crl_files: tuple[tuple[Path, tuple[x509.CertificateRevocationList, ...]], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    ocsp_staple: bytes | None = field(init=False, repr=False, compare=False, default=None)
    ticket_keys: bytes | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        self._normalise()
        self._set(
            "policy",
            resolve_policy(
                self.profile,
                self.ciphers,
                self.min_tls,
                self.max_tls,
                groups=self.groups,
                tls13_ciphers=self.tls13_ciphers,
            ),
        )
        passphrase = None
        if self.key_passphrase_file is not None:
            if self.certificate is None:
                raise ConfigurationError("--key-passphrase-file", "needs --cert and --key")
            passphrase = _pem.read_passphrase(
                self.key_passphrase_file, "--key-passphrase-file"
            )
        self._load_identity(passphrase)
        trusted: list[x509.Certificate] = []
        for path in self.ca:
            trusted.extend(_pem.load_ca_certificates(path, "--ca"))
        self._set("trusted", tuple(trusted))
        self._set(
            "allowed",
            AllowList.parse(self.allow_cn, self.allow_dns, self.allow_uri, self.allow_spki),
        )
        self._set("pins", frozenset(parse_pin(p, "--pin-spki") for p in self.pin_spki))
        self._set(
            "sni_identities",
            tuple(
                (
                    entry,
                    *_pem.load_identity(
                        entry.certificate,
                        entry.private_key,
                        passphrase,
                        f"--sni {entry.name}=",
                        f"--sni {entry.name}=",
                    ),
                )
                for entry in self.sni
            ),
        )
        by_file = tuple((path, load_crls(path)) for path in self.crl)
        self._set("crl_files", by_file)
        self._set("crls", tuple(crl for _, crls in by_file for crl in crls))
        if self.ocsp_response is not None:
            if not self.chain:
                raise ConfigurationError("--ocsp-response", "needs --cert")
            issuer = self.chain[1] if len(self.chain) > 1 else None
            self._set(
                "ocsp_staple", load_ocsp_response(self.ocsp_response, self.chain[0], issuer)
            )
        if self.ticket_key_file is not None:
            self._set("ticket_keys", load_ticket_keys(self.ticket_key_file))
        if self.keylog_file is not None:
            _pem.check_keylog_file(self.keylog_file, "--keylog-file")
        for value in self.alpn:
            if not value or len(value.encode()) > 255:
                raise ConfigurationError(
                    "--alpn", f"{value!r} is not a protocol name (1 to 255 bytes)"
                )

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _normalise(self) -> None:
        for name in (
            "certificate",
            "private_key",
            "key_passphrase_file",
            "ocsp_response",
            "keylog_file",
            "ticket_key_file",
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                self._set(name, Path(value))
        self._set("ca", _paths(self.ca))
        self._set("crl", _paths(self.crl))
        for name in (
            "allow_cn",
            "allow_dns",
            "allow_uri",
            "allow_spki",
            "pin_spki",
            "alpn",
        ):
            self._set(name, _strings(getattr(self, name)))
        self._set("sni", tuple(self.sni))

    def _load_identity(self, passphrase: bytes | None) -> None:
        if self.certificate is None:
            if self.private_key is not None:
                raise ConfigurationError(
                    "--key", "needs --cert: a key alone cannot be served", self.private_key
                )
            return
        chain, key = _pem.load_identity(self.certificate, self.private_key, passphrase)
        self._set("chain", chain)
        self._set("key", key)

    def warnings(self, now: datetime.datetime | None = None) -> list[str]:
        """
        What is valid but worth a warning: served certificates that expire
        within 30 days, or that are self-signed; CRLs that cannot work (see
        L{crl_warnings}); a key log; C{--profile old}.
        """
        now = now or datetime.datetime.now(datetime.UTC)
        found = []
        served = [("--cert", self.chain)] + [
            (f"--sni {entry.name}=", chain) for entry, chain, _ in self.sni_identities
        ]
        for option, chain in served:
            if not chain:
                continue
            leaf = chain[0]
            left = leaf.not_valid_after_utc - now
            if left < EXPIRY_WARNING:
                found.append(
                    f"{option}: certificate {_pem.describe(leaf)} expires in "
                    f"{left.days} days ({leaf.not_valid_after_utc:%Y-%m-%d})"
                )
            if leaf.issuer == leaf.subject and len(chain) == 1:
                found.append(
                    f"{option}: certificate {_pem.describe(leaf)} is self-signed: "
                    "clients can only trust it by pinning it"
                )
        found.extend(self.crl_warnings(now=now))
        if self.profile is Profile.OLD:
            found.append(OLD_PROFILE_WARNING)
        if self.keylog_file is not None:
            found.append(
                f"--keylog-file {self.keylog_file}: TLS secrets are being written; "
                "anyone who reads that file can decrypt the traffic"
            )
        return found

    def crl_warnings(
        self,
        extra_trust: Iterable[x509.Certificate] = (),
        now: datetime.datetime | None = None,
    ) -> list[str]:
        """
        One line per C{crl} problem that makes it unable to work: expired, not
        valid yet, or not issued and signed by a trusted CA (checked only when
        the trusted CAs are known: C{ca} or C{extra_trust}).  Such a CRL admits
        no one it should not; it refuses everyone its issuer certified.
        """
        trusted = [*self.trusted, *extra_trust]
        return [
            f"--crl {path}: {problem}"
            for path, crls in self.crl_files
            for crl in crls
            for problem in crl_problems(crl, trusted or None, now)
        ]

    def replace(self, **changes: object) -> TLSSettings:
        """
        A copy with C{changes} applied, every file read and checked again.

        With no changes this re-reads the same files: the way to pick up a
        renewed certificate.

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

        def path(value: str | None) -> Path | None:
            return None if value is None else Path(value)

        return cls(
            certificate=path(certificate),
            private_key=path(private_key),
            key_passphrase_file=path(key_passphrase_file),
            ca=_paths(ca),
            verify=None if verify is None else VerifyMode.parse(verify),
            profile=Profile.INTERMEDIATE if profile is None else Profile.parse(profile),
            ciphers=ciphers,
            tls13_ciphers=tls13_ciphers,
            groups=groups,
            min_tls=None if min_tls is None else parse_tls_version(min_tls, "--min-tls"),
            max_tls=None if max_tls is None else parse_tls_version(max_tls, "--max-tls"),
            allow_cn=_strings(allow_cn),
            allow_dns=_strings(allow_dns),
            allow_uri=_strings(allow_uri),
            allow_spki=_strings(allow_spki),
            pin_spki=_strings(pin_spki),
            sni=tuple(SNICertificate.parse(entry) for entry in _strings(sni)),
            sni_strict=sni_strict,
            alpn=_strings(alpn),
            crl=_paths(crl),
            ocsp_response=path(ocsp_response),
            require_ocsp_staple=require_ocsp_staple,
            keylog_file=path(keylog_file),
            ticket_key_file=path(ticket_key_file),
        )
