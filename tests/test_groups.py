"""
Tests for issue 13, items 1 and 2: the post-quantum group X25519MLKEM768 in every
profile (Mozilla guidelines 5.8), ``--groups`` and ``--tls13-ciphers`` narrowing the
profile, the negotiated group in the connection log, ``client -v``, ``tlsecho
check`` and the metrics, and ``--profile old`` for testing legacy peers.

Handshakes run in memory against plain pyOpenSSL clients (peers that offer exactly
one group, suite or version), and against the real ``twistd tlsecho`` with
``openssl s_client``, the standard library's ``ssl`` and tlslite-ng.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from OpenSSL import SSL
from OpenSSL._util import lib
from tlslite.api import HandshakeSettings, TLSConnection
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from tlsecho import (
    ConfigurationError,
    Profile,
    TLSSettings,
    TLSVersion,
    server_creator,
)
from tlsecho._app._configuration import ServerConfiguration
from tlsecho._app._metrics import ServerMetrics
from tlsecho._settings._profiles import PROFILE_GROUPS, group_label
from tlsecho._tls import _policy
from tlsecho._tls._policy import available_groups

from _loopback import Loopback, OpenClient, loopback
from _processes import (
    TLSECHO,
    ServerProcess,
    metrics_of,
    run_client,
    run_twistd,
    start_server,
)
from conftest import ServerLog, TLSFiles

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PQ = "X25519MLKEM768"
#: Whether the OpenSSL tlsecho runs on (cryptography's) has the hybrid group.
HAS_PQ = PQ in available_groups()
needs_pq = pytest.mark.skipif(
    not HAS_PQ,
    reason=f"the linked {SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()} has no "
    f"{PQ} (needs OpenSSL 3.5 or later)",
)
#: Description numbers of the alerts asserted on (RFC 8446 section 6).
HANDSHAKE_FAILURE = 40
PROTOCOL_VERSION = 70


# Helpers ------------------------------------------------------------------------------


@implementer(IOpenSSLClientConnectionCreator)
class _PlainClient:
    """A pyOpenSSL client with none of tlsecho's policy, set up by ``configure``."""

    def __init__(self, configure: Callable[[SSL.Context], object]):
        self._configure = configure

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        context = SSL.Context(SSL.TLS_METHOD)
        self._configure(context)
        connection = SSL.Connection(context, None)
        connection.set_connect_state()
        return connection


def _offering(groups: str, version: int = SSL.TLS1_3_VERSION) -> _PlainClient:
    """A plain client offering only ``groups`` (key share for the first) at ``version``."""

    def configure(context: SSL.Context) -> None:
        context.set_min_proto_version(version)
        context.set_max_proto_version(version)
        assert lib.SSL_CTX_set1_curves_list(context._context, groups.encode()) == 1

    return _PlainClient(configure)


def _legacy(version: int) -> _PlainClient:
    """A plain client speaking only ``version`` (its own security level at 0)."""

    def configure(context: SSL.Context) -> None:
        context.set_min_proto_version(version)
        context.set_max_proto_version(version)
        context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")

    return _PlainClient(configure)


def _suites(suites: str) -> _PlainClient:
    """A plain TLS 1.3 client offering only the suites ``suites``."""

    def configure(context: SSL.Context) -> None:
        context.set_min_proto_version(SSL.TLS1_3_VERSION)
        context.set_tls13_ciphersuites(suites.encode())

    return _PlainClient(configure)


def _server(files: TLSFiles, **settings: object) -> object:
    return server_creator(
        TLSSettings(certificate=files.server_cert, private_key=files.server_key, **settings)
    )


def _open(server: object, client: _PlainClient) -> Loopback:
    connection = loopback(server, client, client=OpenClient())
    assert connection.client.handshake_done, connection.client.lost
    return connection


def _alert_of(connection: Loopback) -> str:
    """The OpenSSL reason of the plain client's failed handshake."""
    client = connection.client
    assert not client.handshake_done
    assert client.lost is not None
    assert client.lost.check(SSL.Error), client.lost
    return "; ".join(str(entry[2]) for entry in client.lost.value.args[0])


def _serve(servers: list, files: TLSFiles, *arguments: str) -> ServerProcess:
    return start_server(
        servers,
        "--cert",
        str(files.server_cert),
        "--key",
        str(files.server_key),
        *arguments,
    )


def _s_client(server: ServerProcess, files: TLSFiles, *extra: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(files.ca),
            *extra,
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    return (
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def _system_openssl_has(group: str) -> bool:
    """Whether the system ``openssl`` knows ``group`` (OpenSSL 3.0 has no ML-KEM)."""
    result = subprocess.run(
        [OPENSSL, "list", "-kem-algorithms"], capture_output=True, text=True, timeout=20
    )
    return "MLKEM" in group.upper() and "ML-KEM-768" in result.stdout.upper()


# Post-quantum groups: the policy -----------------------------------------------------


def test_profiles_use_mozilla_58_groups() -> None:
    """Every profile resolves to X25519MLKEM768:X25519:prime256v1:secp384r1, less the
    groups the linked OpenSSL lacks (none here, if it has ML-KEM)."""
    expected = ":".join(g for g in PROFILE_GROUPS if g in available_groups())
    for profile in Profile:
        assert TLSSettings(profile=profile).policy.groups == expected
    assert PROFILE_GROUPS == ("X25519MLKEM768", "X25519", "prime256v1", "secp384r1")


def test_group_the_openssl_lacks_is_dropped_and_said(
    monkeypatch: pytest.MonkeyPatch, tls_files: TLSFiles
) -> None:
    """On an OpenSSL without X25519MLKEM768 the profile leaves it out (the server still
    starts) and tlsecho check names it, in text and JSON."""
    from tlsecho.check import _print_text, report

    monkeypatch.setattr(_policy, "available_groups", lambda: PROFILE_GROUPS[1:])
    configuration = ServerConfiguration.from_options(
        {"cert": str(tls_files.server_cert), "key": str(tls_files.server_key)}
    )
    data = report(configuration)
    assert data["groups"] == ["X25519", "prime256v1", "secp384r1"]
    assert data["groups_unavailable"] == [PQ]
    json.dumps(data)
    lines: list[str] = []

    class Out:
        write = staticmethod(lines.append)

    _print_text(data, Out())  # type: ignore[arg-type]
    text = "".join(lines)
    assert "groups: X25519:prime256v1:secp384r1\n" in text
    assert re.search(r"groups left out: X25519MLKEM768 \(not in the linked OpenSSL", text)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(groups=PQ)
    assert str(info.value).startswith(
        "groups: X25519MLKEM768 is not available in the linked OpenSSL"
    )
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("X448", "groups: 'X448' is not a group of the profile (allowed: "),
        ("X25519:ffdhe2048", "groups: 'ffdhe2048' is not a group of the profile"),
        ("P-521", "groups: 'P-521' is not a group of the profile"),
        (":", "groups: no group in ':'"),
    ],
)
def test_groups_outside_the_profile_are_one_line_errors(groups: str, message: str) -> None:
    """groups can only narrow the profile: any other group is one line naming it."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings.from_strings(groups=groups)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_groups_narrow_in_the_given_order() -> None:
    """--groups keeps the given order and takes OpenSSL's other spellings."""
    policy = TLSSettings.from_strings(groups="P-384:x25519:secp256r1:P-384").policy
    assert policy.groups == "secp384r1:X25519:prime256v1"


def test_group_labels_form_a_fixed_set() -> None:
    """A negotiated group becomes a metric label among the profile's names, other
    and none, whatever OpenSSL calls it."""
    assert group_label("secp256r1") == "prime256v1"
    assert group_label("x25519") == "X25519"
    assert group_label(PQ) == PQ
    assert group_label("brainpoolP256r1") == "other"
    assert group_label(None) == "none"
    assert group_label(b"X25519") == "none"


# Post-quantum groups: handshakes -----------------------------------------------------


@needs_pq
def test_client_offering_only_x25519mlkem768_is_served(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A TLS 1.3 client offering only X25519MLKEM768 completes over it, and the
    connection's log event names the group."""
    connection = _open(_server(tls_files), _offering(PQ))
    assert connection.server_tls.getHandle().get_group_name() == PQ
    connection.client_tls.loseConnection()
    connection.run()
    assert server_log.only()["group"] == PQ


@needs_pq
def test_groups_x25519_refuses_x25519mlkem768_only_client(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """With --groups X25519 a client offering only X25519MLKEM768 gets the
    handshake_failure alert (RFC 8446 4.1.1: no group in common), and the server logs
    a refused handshake."""
    connection = loopback(_server(tls_files, groups="X25519"), _offering(PQ), OpenClient())
    # OpenSSL 4 names a received alert 40 this way.
    assert _alert_of(connection) == "tls alert handshake failure"
    event = server_log.only()
    assert event["failed"]
    assert event["stage"] == "TLS handshake"
    assert event["reason"] == "no key exchange group in common"
    assert event["group"] is None


@needs_pq
def test_groups_x25519_still_serves_x25519(tls_files: TLSFiles) -> None:
    """The same --groups X25519 server completes with a client offering X25519MLKEM768
    and X25519 (a HelloRetryRequest if needed), over X25519."""
    connection = _open(_server(tls_files, groups="X25519"), _offering(f"{PQ}:X25519"))
    assert connection.server_tls.getHandle().get_group_name().lower() == "x25519"


@needs_pq
def test_openssl_s_client_offering_only_x25519mlkem768(
    servers: list, tls_files: TLSFiles
) -> None:
    """openssl s_client -groups X25519MLKEM768 completes a handshake over it (skipped
    where the system openssl predates ML-KEM, as OpenSSL 3.0 does)."""
    if not _system_openssl_has(PQ):
        pytest.skip(f"the system openssl has no {PQ} (it predates OpenSSL 3.5)")
    server = _serve(servers, tls_files)
    code, stdout, stderr = _s_client(server, tls_files, "-tls1_3", "-groups", PQ)
    assert code == 0, stdout + stderr
    assert "Negotiated TLS1.3 group: X25519MLKEM768" in stdout


@needs_pq
def test_group_in_log_line_client_v_and_metrics(servers: list, tls_files: TLSFiles) -> None:
    """tlsecho client (which offers X25519MLKEM768 first) and the server agree on it:
    client -v says so, the connection log line names it, and the handshake counter
    carries it as a label; a client restricted to --groups P-384 shows P-384."""
    server = _serve(servers, tls_files, "--metrics", "tcp:0:interface=127.0.0.1")
    address = f"127.0.0.1:{server.port}"
    result = run_client(
        address, "--ca", str(tls_files.ca), "-v", "--servername", "localhost"
    )
    assert result.returncode == 0, result.stderr
    assert f"TLSv1.3, TLS_AES_128_GCM_SHA256, group {PQ}, ALPN" in result.stderr.decode()
    server.wait_for(rf"\(TLSv1\.3, TLS_AES_128_GCM_SHA256, group {PQ}, SNI localhost")
    result = run_client(
        address, "--ca", str(tls_files.ca), "-v", "--groups", "P-384", "--servername",
        "localhost",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "group secp384r1, ALPN" in result.stderr.decode()
    server.wait_for(r"group secp384r1, SNI localhost")
    values = metrics_of(server)
    ok = {k: v for k, v in values.items() if k.startswith("tlsecho_handshakes_total{")}
    assert ok == {
        f'tlsecho_handshakes_total{{cipher="TLS_AES_128_GCM_SHA256",group="{group}",'
        'outcome="ok",version="TLSv1.3"}': 1.0
        for group in (PQ, "secp384r1")
    }


def test_metrics_label_a_failed_or_groupless_handshake_none() -> None:
    """A failed handshake is counted with group none; an unknown group as other."""
    metrics = ServerMetrics()
    base = {"bytes_in": 0, "bytes_out": 0, "reason": "closed", "stage": "TLS"}
    metrics.connection_ended(
        {**base, "handshake_seconds": 0.01, "failed": False, "tls_version": "TLSv1.3",
         "cipher": "TLS_AES_128_GCM_SHA256", "group": "brainpoolP256r1tls13"}
    )  # fmt: skip
    metrics.connection_ended(
        {**base, "handshake_seconds": None, "failed": True, "stage": "TLS handshake",
         "reason": "no cipher in common", "tls_version": None, "cipher": None,
         "group": None}
    )  # fmt: skip
    sample = metrics.registry.get_sample_value
    labels = {"outcome": "ok", "version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256"}
    assert sample("tlsecho_handshakes_total", {**labels, "group": "other"}) == 1
    failed = {"outcome": "failed", "version": "", "cipher": "", "group": "none"}
    assert sample("tlsecho_handshakes_total", failed) == 1


# TLS 1.3 suites ----------------------------------------------------------------------


def test_tls13_ciphers_narrow_the_profile(tls_files: TLSFiles) -> None:
    """--tls13-ciphers leaves the server exactly those suites, in the given order."""
    suites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
    connection = _open(_server(tls_files, tls13_ciphers=suites), _suites(suites))
    offered = connection.server_tls.getHandle().get_cipher_list()
    assert [name for name in offered if name.startswith("TLS_")] == suites.split(":")
    assert connection.client_tls.getHandle().get_cipher_name() == (
        "TLS_CHACHA20_POLY1305_SHA256"
    )


def test_tls13_client_outside_the_narrowed_suites_is_refused(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A TLS 1.3 client offering only TLS_AES_128_GCM_SHA256 against
    --tls13-ciphers TLS_AES_256_GCM_SHA384 gets handshake_failure."""
    server = _server(tls_files, tls13_ciphers="TLS_AES_256_GCM_SHA384")
    connection = loopback(server, _suites("TLS_AES_128_GCM_SHA256"), OpenClient())
    assert _alert_of(connection) == "tls alert handshake failure"
    assert server_log.only()["reason"] == "no cipher in common"


@pytest.mark.parametrize(
    ("suites", "message"),
    [
        ("TLS_AES_128_CCM_SHA256", "'TLS_AES_128_CCM_SHA256' is not a TLS 1.3 suite"),
        ("TLS_AES_128_GCM_SHA256:AES128-SHA", "'AES128-SHA' is not a TLS 1.3 suite"),
        ("", "no suite in ''"),
    ],
)
def test_tls13_ciphers_outside_the_profile_are_one_line_errors(
    suites: str, message: str
) -> None:
    """tls13_ciphers naming a suite outside the profile's three is one line."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings.from_strings(tls13_ciphers=suites)
    assert str(info.value).startswith(f"tls13_ciphers: {message}")
    assert "\n" not in str(info.value)


def test_server_flags_refuse_a_bad_group_in_one_line(tls_files: TLSFiles) -> None:
    """twistd tlsecho --groups X448 exits at once with one line naming --groups."""
    result = run_twistd(
        "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key),
        "--groups", "X448",
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "--groups" in line]
    assert errors == [
        "tlsecho: --groups: 'X448' is not a group of the profile (allowed: "
        "X25519MLKEM768, X25519, prime256v1, secp384r1) (see 'twistd tlsecho --help')"
    ], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# --profile old -----------------------------------------------------------------------


def test_old_policy() -> None:
    """--profile old allows TLS 1.0 to 1.3, Mozilla's old ciphers the OpenSSL has
    (no DHE), at security level 0; the other profiles set no level."""
    policy = TLSSettings(profile=Profile.OLD).policy
    assert (policy.min_tls, policy.max_tls) == (TLSVersion.TLSv1_0, TLSVersion.TLSv1_3)
    assert "ECDHE-ECDSA-AES128-SHA" in policy.ciphers.split(":")
    assert "AES128-SHA" in policy.ciphers.split(":")
    assert "DHE" not in policy.ciphers.replace("ECDHE", "")
    assert policy.security_level == 0
    assert TLSSettings().policy.security_level is None


@pytest.mark.parametrize(
    ("version", "name"), [(SSL.TLS1_VERSION, "TLSv1"), (SSL.TLS1_1_VERSION, "TLSv1.1")]
)
def test_old_profile_serves_tls10_and_tls11(
    tls_files: TLSFiles, version: int, name: str
) -> None:
    """A TLS 1.0 or 1.1 client completes with --profile old (not with the default)."""
    connection = _open(_server(tls_files, profile=Profile.OLD), _legacy(version))
    assert connection.server_tls.getHandle().get_protocol_version_name() == name
    refused = loopback(_server(tls_files), _legacy(version), OpenClient())
    assert "protocol version" in _alert_of(refused)


def test_old_profile_with_the_development_certificate_stays_on_loopback() -> None:
    """profile old with the development certificate cannot listen beyond loopback."""
    with pytest.raises(ConfigurationError) as info:
        ServerConfiguration.from_options(
            {"profile": "old", "listen": ["tcp:0:interface=0.0.0.0"]}, check_listen=False
        )
    assert str(info.value).startswith("listen: 'tcp:0:interface=0.0.0.0' is not loopback")
    configuration = ServerConfiguration.from_options(
        {"profile": "old", "listen": ["tcp:0:interface=127.0.0.1"]}, check_listen=False
    )
    assert configuration.settings.policy.min_tls is TLSVersion.TLSv1_0


def test_min_tls_11_without_old_points_to_profile_old(tls_files: TLSFiles) -> None:
    """twistd tlsecho --min-tls 1.1 is still a one-line error, hinting at --profile old."""
    result = run_twistd(
        "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key),
        "--min-tls", "1.1",
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        "--min-tls: TLS 1.1 is below what --profile intermediate allows (1.2); use "
        "--profile old to test legacy peers"
    ) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_warns_about_profile_old(tls_files: TLSFiles) -> None:
    """tlsecho check --profile old shows TLS 1.0 and exits 1 with one warning line."""
    result = subprocess.run(
        [TLSECHO, "check", "--cert", str(tls_files.server_cert), "--key",
         str(tls_files.server_key), "--ca", str(tls_files.client_ca), "--profile", "old"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "protocols: TLS 1.0 to TLS 1.3 (profile old)" in result.stdout
    assert "TLS 1.0 to 1.2 ciphers: ECDHE-ECDSA-AES128-GCM-SHA256:" in result.stdout
    warned = [line for line in result.stdout.splitlines() if "--profile old" in line]
    assert warned == [
        "warning: --profile old: TLS 1.0 and 1.1, CBC and non-forward-secret ciphers "
        "are on, at OpenSSL security level 0; for testing legacy peers only"
    ]


def _tlslite_echo(port: int, version: tuple[int, int]) -> tuple[tuple[int, int], bytes]:
    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = version
    settings.certificate_compression_send = []
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        connection = TLSConnection(raw)
        connection.handshakeClientCert(settings=settings, serverName="localhost")
        connection.write(b"legacy\n")
        echoed = connection.read(max=7, min=7)
        return connection.version, bytes(echoed)


def test_old_profile_against_real_legacy_peers(servers: list, tls_files: TLSFiles) -> None:
    """twistd tlsecho --profile old warns once at start, and serves a TLS 1.0 and a
    TLS 1.1 handshake to openssl s_client, the standard library's ssl, tlslite-ng
    and tlsecho client --profile old (which warns too)."""
    server = _serve(servers, tls_files, "--profile", "old")
    warned = [line for line in server.lines if "--profile old" in line]
    assert len(warned) == 1, warned
    assert "for testing legacy peers only" in warned[0]
    for flag, name in (("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")):
        code, stdout, stderr = _s_client(
            server, tls_files, flag, "-cipher", "DEFAULT:@SECLEVEL=0"
        )
        assert code == 0, stdout + stderr
        # The session's lines (the "New," line gives the cipher's own version).
        assert re.search(rf"^\s+Protocol\s+: {re.escape(name)}$", stdout, re.M), stdout
        assert re.search(r"^\s+Cipher\s+: ECDHE-ECDSA-AES128-SHA$", stdout, re.M)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            context = ssl.create_default_context(cafile=str(tls_files.ca))
            context.minimum_version = context.maximum_version = version
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
                assert wrapped.version() == version.name.replace("_", ".")
                wrapped.sendall(b"stdlib\n")
                assert wrapped.recv(100) == b"stdlib\n"
    for version in ((3, 1), (3, 2)):
        assert _tlslite_echo(server.port, version) == (version, b"legacy\n")
    result = run_client(
        f"127.0.0.1:{server.port}", "--ca", str(tls_files.ca), "--servername",
        "localhost", "--profile", "old", "--max-tls", "1.0", "-v",
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert result.stdout == b"hello\n"
    assert "tlsecho client: warning: --profile old:" in stderr
    assert ": TLSv1, ECDHE-ECDSA-AES128-SHA, group " in stderr
    server.wait_for(r"\(TLSv1, ECDHE-ECDSA-AES128-SHA, group ")


def test_default_server_still_refuses_legacy_tlslite(
    servers: list, tls_files: TLSFiles
) -> None:
    """Without --profile old, tlslite-ng offering only TLS 1.0 gets protocol_version."""
    from tlslite.errors import TLSRemoteAlert

    server = _serve(servers, tls_files)
    with pytest.raises(TLSRemoteAlert) as info:
        _tlslite_echo(server.port, (3, 1))
    assert info.value.description == PROTOCOL_VERSION


def test_etc_toml_shows_the_new_keys() -> None:
    """etc/tlsecho.toml shows groups, tls13-ciphers and profile old (commented)."""
    text = (Path(__file__).resolve().parent.parent / "etc" / "tlsecho.toml").read_text()
    for line in ('# groups = "', '# tls13-ciphers = "', '# profile = "old"'):
        assert line in text
