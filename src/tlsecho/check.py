"""
C{tlsecho check}: validate a server configuration and report on it, listening on
nothing.

It takes the server's flags (or C{--config FILE}) and prints, for each served
certificate, its subject, names, issuer, expiry and days left, the chain's order
and completeness, the key match and key-file mode; the CA count; the resolved
protocol versions, ciphers and groups; and warnings.  Exit status 0 when all is
fine, 1 with warnings only, 2 on errors.  C{--json} prints the same for machines.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from cryptography import x509
from OpenSSL import SSL
from twisted.python import usage

from ._app._configuration import ServerConfiguration
from ._app._version import describe, versions
from ._settings._identity import CertificateNames, spki_sha256
from ._settings._options import Side
from ._settings._profiles import version_name

__all__ = ["main", "report"]


def _chain_report(
    option: str, path: Path | None, key: Path | None, chain: Sequence[x509.Certificate]
) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC)
    certificates = [
        {
            "subject": c.subject.rfc4514_string(),
            "names": CertificateNames.of(c).alt_names(),
            "issuer": c.issuer.rfc4514_string(),
            "not_after": c.not_valid_after_utc.isoformat(),
            "days_left": (c.not_valid_after_utc - now).days,
            "spki_sha256": spki_sha256(c).hex(),
        }
        for c in chain
    ]
    last = chain[-1]
    if last.issuer == last.subject:
        completeness = "complete, and includes the self-signed root (clients ignore it)"
    else:
        completeness = (
            f"ends with a certificate issued by {last.issuer.rfc4514_string()}: "
            "clients must trust that CA"
        )
    key_path = key or path
    mode = key_path.stat().st_mode & 0o777 if key_path is not None else None
    return {
        "option": option,
        "file": str(path),
        "key_file": str(key_path),
        "key_file_mode": None if mode is None else f"{mode:04o}",
        "key_matches": True,  # Material.load refuses a key that does not match
        "chain_in_order": True,  # and a chain out of order
        "chain": completeness,
        "certificates": certificates,
    }


def report(configuration: ServerConfiguration) -> dict[str, Any]:
    """
    Everything C{tlsecho check} says about a valid configuration, as data.
    """
    settings, material = configuration.settings, configuration.material
    policy = settings.policy
    served = [
        _chain_report("--cert", settings.certificate, settings.private_key, material.chain)
    ]
    for entry, chain, _ in material.sni_identities:
        served.append(
            _chain_report(
                f"--sni {entry.name}", entry.certificate, entry.private_key, chain
            )
        )
    return {
        "versions": versions(),
        "listen": list(configuration.listen),
        "development_certificate": configuration.development is not None,
        "served": served,
        "ca_files": [str(p) for p in settings.ca],
        "ca_certificates": len(material.trusted),
        "verify": settings.verify_for(Side.SERVER).value,
        "profile": settings.profile.value,
        "tls_versions": [version_name(policy.min_tls), version_name(policy.max_tls)],
        "tls12_ciphers": policy.ciphers.split(":") if policy.ciphers else [],
        "tls13_suites": policy.tls13_suites.split(":"),
        "groups": policy.groups.split(":"),
        # The profile's groups left out because the linked OpenSSL lacks them.
        "groups_unavailable": list(policy.groups_unavailable),
        "openssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace"),
        "alpn": list(settings.alpn),
        "ticket_key_file": (
            str(settings.ticket_key_file) if settings.ticket_key_file else None
        ),
        "warnings": material.warnings(),
    }


def _print_text(data: dict[str, Any], out: IO[str]) -> None:
    write = out.write
    write(describe(data["versions"]) + "\n")
    write(f"listen: {', '.join(data['listen'])}\n")
    for served in data["served"]:
        write(f"{served['option']} {served['file']}\n")
        for index, c in enumerate(served["certificates"], start=1):
            write(f"  [{index}] {c['subject']}\n")
            if c["names"]:
                write(f"      names: {', '.join(c['names'])}\n")
            write(f"      issuer: {c['issuer']}\n")
            write(f"      not after: {c['not_after']} ({c['days_left']} days left)\n")
        write(f"  chain: in order; {served['chain']}\n")
        write(
            f"  key: {served['key_file']} matches the certificate; "
            f"file mode {served['key_file_mode']}\n"
        )
    write(
        f"client verification: {data['verify']}; CA certificates: "
        f"{data['ca_certificates']} from {len(data['ca_files'])} file(s)\n"
    )
    low, high = data["tls_versions"]
    write(f"protocols: TLS {low} to TLS {high} (profile {data['profile']})\n")
    ciphers = "TLS 1.2" if low in ("1.2", "1.3") else f"TLS {low} to 1.2"
    write(f"{ciphers} ciphers: {':'.join(data['tls12_ciphers']) or '(TLS 1.2 off)'}\n")
    write(f"TLS 1.3 suites: {':'.join(data['tls13_suites'])}\n")
    write(f"groups: {':'.join(data['groups'])}\n")
    if data["groups_unavailable"]:
        write(
            f"groups left out: {':'.join(data['groups_unavailable'])} "
            f"(not in the linked {data['openssl']})\n"
        )
    if data["alpn"]:
        write(f"ALPN: {', '.join(data['alpn'])}\n")
    if data["ticket_key_file"]:
        write(f"session tickets: keys from {data['ticket_key_file']}, shared\n")
    else:
        write("session tickets: keys of each process's own\n")
    for warning in data["warnings"]:
        write(f"warning: {warning}\n")
    write("result: " + ("warnings" if data["warnings"] else "ok") + "\n")


def _check_options() -> usage.Options:
    """
    The options of C{tlsecho check}: the server's, plus C{--json}, with a help
    text of its own.
    """
    from .tap import Options

    class CheckOptions(Options):
        synopsis = "Usage: tlsecho check [--json] [server options]"
        longdesc = (
            "Validate a server configuration (the same flags, or --config FILE) and "
            "report on it: certificates, chain, key, CAs, protocols, ciphers, groups, "
            "warnings. Listens on nothing. Exit status: 0 ok, 1 warnings only, "
            "2 errors (each error one line on standard error)."
        )
        optFlags = [
            *Options.optFlags,
            ["json", None, 'Print the report as JSON (errors too, as {"errors": [...]}).'],
        ]

    return CheckOptions()


def main(
    argv: Sequence[str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> NoReturn:
    """
    Run C{tlsecho check} and exit: 0 fine, 1 warnings only, 2 errors.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    arguments = list(sys.argv[2:] if argv is None else argv)
    options = _check_options()
    if "--help" in arguments or "-h" in arguments:
        out.write(str(options))
        raise SystemExit(0)
    as_json = "--json" in arguments
    try:
        options.parseOptions(arguments)
    except usage.UsageError as e:
        if as_json:
            out.write(json.dumps({"errors": [str(e)]}) + "\n")
        err.write(f"tlsecho check: error: {e}\n")
        raise SystemExit(2) from None
    data = report(options["configuration"])
    if as_json:
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        _print_text(data, out)
    raise SystemExit(1 if data["warnings"] else 0)
