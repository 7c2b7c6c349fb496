"""
Tests for the TLS policy profiles (issue 3, item 1): Mozilla "intermediate" (the
default: TLS 1.2 and 1.3, ECDHE with AEAD ciphers) and "modern" (TLS 1.3 only), the
groups X25519MLKEM768, X25519, P-256 and P-384, ``--ciphers``/``--min-tls``/``--max-tls``
refining a profile, and what every context has: no compression, no renegotiation, the
server's cipher order.

Settings are checked directly, handshakes run in memory (tlsecho's own client, or a
plain pyOpenSSL client for peers tlsecho refuses to be), and ``openssl s_client``
forces versions, ciphers and groups against the real ``twistd tlsecho`` server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsecho import (
    ConfigurationError,
    HandshakeFailed,
    Profile,
    TLSSettings,
    TLSVersion,
    client_creator,
    server_creator,
)
from tlsecho.tap import Options

from _loopback import Loopback, OpenClient, loopback
from _processes import (
    TLSECHO,
    ServerProcess,
    identity,
    run_client,
    run_twistd,
    start_server,
)
from conftest import ServerLog, TLSFiles, write_cert

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

#: Mozilla intermediate's TLS 1.2 suites without DHE: ECDHE key exchange, AEAD only.
INTERMEDIATE_TLS12 = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
]
TLS13_SUITES = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
]
#: OpenSSL's names for the groups X25519MLKEM768, X25519, P-256 and P-384.
MOZILLA_GROUPS = {"X25519MLKEM768", "x25519", "secp256r1", "prime256v1", "secp384r1"}
#: Mozilla's groups (guidelines 5.8), as the profiles spell them.
PROFILE_GROUPS = "X25519MLKEM768:X25519:prime256v1:secp384r1"


# Helpers ------------------------------------------------------------------------------


@implementer(IOpenSSLClientConnectionCreator)
class _PlainClient:
    """
    A pyOpenSSL client with none of tlsecho's policy (it verifies nothing), set up
    by ``configure``: a peer that offers what tlsecho itself never would.
    """

    def __init__(self, configure: Callable[[SSL.Context], object]):
        self._configure = configure

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        context = SSL.Context(SSL.TLS_METHOD)
        self._configure(context)
        connection = SSL.Connection(context, None)
        connection.set_connect_state()
        return connection


def _tls12_only(ciphers: str) -> Callable[[SSL.Context], None]:
    """Configure a plain client for TLS 1.2 with exactly ``ciphers``."""

    def configure(context: SSL.Context) -> None:
        context.set_max_proto_version(SSL.TLS1_2_VERSION)
        context.set_cipher_list(ciphers.encode("ascii"))

    return configure


def _connection_reason(events: ServerLog) -> str:
    """The reason of the one connection event the echo server logged."""
    event = events.only()
    assert event["failed"]
    reason: str = event["reason"]
    return reason


def _server_settings(files: TLSFiles, **settings: object) -> TLSSettings:
    return TLSSettings(
        certificate=files.server_cert,
        private_key=files.server_key,
        **settings,
    )


def _client(files: TLSFiles, **settings: object) -> IOpenSSLClientConnectionCreator:
    return client_creator(TLSSettings(ca=(files.ca,), **settings), "localhost")


def _open(server: object, client: IOpenSSLClientConnectionCreator) -> Loopback:
    """A handshake kept open, asserting it completed."""
    connection = loopback(server, client, client=OpenClient())
    assert connection.client.handshake_done, connection.client.lost
    return connection


def _handshake_failure(connection: Loopback) -> str:
    """The client's reason, asserting the echo failed with HandshakeFailed."""
    results: list[object] = []
    connection.client.result.addBoth(results.append)
    (outcome,) = results
    assert isinstance(outcome, Failure), f"the echo succeeded: {outcome!r}"
    assert outcome.check(HandshakeFailed), outcome.getTraceback()
    reason: str = outcome.value.reason
    return reason


def _refused_in_memory(connection: Loopback) -> None:
    """Assert a plain client's handshake did not complete."""
    client = connection.client
    assert not client.handshake_done
    assert client.lost is not None


@pytest.fixture
def rsa_files(tmp_path: Path) -> TLSFiles:
    """Like tls_files, with an RSA server certificate (any ECDHE group can sign for it)."""
    server_ca = trustme.CA(key_type=trustme.KeyType.RSA)
    client_ca = trustme.CA()
    server_cert, server_key = write_cert(
        server_ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.RSA),
        tmp_path,
        "server",
    )
    client_cert, client_key = write_cert(
        client_ca.issue_cert("client.example"), tmp_path, "client"
    )
    server_ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    return TLSFiles(
        ca=tmp_path / "ca.pem",
        server_cert=server_cert,
        server_key=server_key,
        client_ca=tmp_path / "client-ca.pem",
        client_cert=client_cert,
        client_key=client_key,
        server_ca=server_ca,
        client_authority=client_ca,
    )


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
    """Handshake with ``openssl s_client`` and quit; (returncode, stdout, stderr)."""
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


def _negotiated(stdout: str) -> str | None:
    """The protocol version of s_client's ``New, ...`` line; None if there was none."""
    match = re.search(r"^New, (\S+), Cipher is \S+$", stdout, re.M)
    return None if match is None or match[1] == "(NONE)" else match[1]


def _usage_error(*arguments: str) -> str:
    options = Options()
    with pytest.raises(usage.UsageError) as info:
        options.parseOptions(list(arguments))
    return str(info.value)


# The intermediate profile (the default) -----------------------------------------------


def test_intermediate_is_the_default_policy() -> None:
    """Settings without a profile resolve to intermediate: TLS 1.2 to 1.3, the ECDHE +
    AEAD TLS 1.2 list, Mozilla's TLS 1.3 suites and groups X25519MLKEM768, X25519,
    P-256, P-384 (this OpenSSL has all four)."""
    settings = TLSSettings()
    assert settings.profile is Profile.INTERMEDIATE
    policy = settings.policy
    assert (policy.min_tls, policy.max_tls) == (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3)
    assert policy.ciphers.split(":") == INTERMEDIATE_TLS12
    assert policy.tls13_suites.split(":") == TLS13_SUITES
    assert policy.groups == PROFILE_GROUPS


def test_intermediate_server_offers_exactly_the_aead_list(tls_files: TLSFiles) -> None:
    """A default server's OpenSSL connection enables exactly the TLS 1.3 suites and the
    six ECDHE + AEAD TLS 1.2 ciphers, nothing else."""
    connection = _open(server_creator(_server_settings(tls_files)), _client(tls_files))
    assert connection.server_tls.getHandle().get_cipher_list() == (
        TLS13_SUITES + INTERMEDIATE_TLS12
    )


@pytest.mark.parametrize(
    ("max_tls", "version"),
    [(TLSVersion.TLSv1_2, "TLSv1.2"), (TLSVersion.TLSv1_3, "TLSv1.3")],
    ids=["1.2", "1.3"],
)
def test_intermediate_serves_tls12_and_tls13(
    tls_files: TLSFiles, max_tls: TLSVersion, version: str
) -> None:
    """The default server completes TLS 1.2 and TLS 1.3 handshakes, over an ECDHE group
    from Mozilla's list."""
    connection = _open(
        server_creator(_server_settings(tls_files)), _client(tls_files, max_tls=max_tls)
    )
    handle = connection.server_tls.getHandle()
    assert handle.get_protocol_version_name() == version
    assert handle.get_group_name() in MOZILLA_GROUPS
    assert connection.client_tls.getHandle().get_group_name() == handle.get_group_name()


@pytest.mark.parametrize(
    "cipher",
    [
        "ECDHE-RSA-AES128-SHA",  # ECDHE, but CBC
        "ECDHE-RSA-AES128-SHA256",  # ECDHE, but CBC
        "AES128-GCM-SHA256",  # AEAD, but RSA key exchange
        "AES256-SHA",  # neither
        "DHE-RSA-AES128-GCM-SHA256",  # AEAD, but finite-field DHE
    ],
)
def test_intermediate_refuses_other_tls12_ciphers(
    rsa_files: TLSFiles, server_log: ServerLog, cipher: str
) -> None:
    """A TLS 1.2 client offering only a cipher outside ECDHE + AEAD is refused, and the
    server logs that no cipher was in common."""
    server = server_creator(_server_settings(rsa_files))
    _refused_in_memory(loopback(server, _PlainClient(_tls12_only(cipher)), OpenClient()))
    assert _connection_reason(server_log) == "no cipher in common"


def test_plain_tls12_client_with_an_intermediate_cipher_is_served(
    rsa_files: TLSFiles,
) -> None:
    """The same plain TLS 1.2 client offering an ECDHE + AEAD cipher is served (the
    refusals above are about the cipher, not the client)."""
    server = server_creator(_server_settings(rsa_files))
    connection = _open(server, _PlainClient(_tls12_only("ECDHE-RSA-AES256-GCM-SHA384")))
    handle = connection.client_tls.getHandle()
    assert handle.get_protocol_version_name() == "TLSv1.2"
    assert handle.get_cipher_name() == "ECDHE-RSA-AES256-GCM-SHA384"


def test_server_cipher_order_wins(tls_files: TLSFiles) -> None:
    """The server picks by its own preference, not the client's: a client preferring
    ChaCha20 then AES-256 gets the server's first choice, AES-128-GCM."""
    server = server_creator(_server_settings(tls_files))
    client = _PlainClient(
        _tls12_only(
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-AES128-GCM-SHA256"
        )
    )
    connection = _open(server, client)
    assert connection.client_tls.getHandle().get_cipher_name() == (
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    )


# The modern profile -------------------------------------------------------------------


def test_modern_policy_is_tls13_only() -> None:
    """--profile modern resolves to TLS 1.3 only, with no TLS 1.2 cipher list."""
    policy = TLSSettings(profile=Profile.MODERN).policy
    assert (policy.min_tls, policy.max_tls) == (TLSVersion.TLSv1_3, TLSVersion.TLSv1_3)
    assert policy.ciphers == ""
    assert policy.tls13_suites.split(":") == TLS13_SUITES
    assert policy.groups == PROFILE_GROUPS


def test_modern_refuses_tls12_client_in_memory(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A modern server refuses a TLS 1.2-only client with a protocol version reason on
    both sides."""
    server = server_creator(_server_settings(tls_files, profile=Profile.MODERN))
    reason = _handshake_failure(
        loopback(server, _client(tls_files, max_tls=TLSVersion.TLSv1_2))
    )
    assert reason == "protocol version: the peer refused our TLS versions"
    assert _connection_reason(server_log) == "protocol version: no TLS version in common"


def test_modern_serves_tls13_client(tls_files: TLSFiles) -> None:
    """A modern server completes a TLS 1.3 handshake with a default client."""
    server = server_creator(_server_settings(tls_files, profile=Profile.MODERN))
    connection = _open(server, _client(tls_files))
    assert connection.server_tls.getHandle().get_protocol_version_name() == "TLSv1.3"


def test_profile_flag_reaches_settings(tls_files: TLSFiles) -> None:
    """The server's --profile flag (any case) selects the profile of its settings."""
    options = Options()
    options.parseOptions(
        [
            *identity(tls_files),
            "--profile",
            "Modern",
        ]
    )
    settings = options["configuration"].settings
    assert settings.profile is Profile.MODERN
    assert settings.policy.min_tls is TLSVersion.TLSv1_3


# Refinements: --ciphers, --min-tls, --max-tls -----------------------------------------


@pytest.mark.parametrize(
    ("ciphers", "expected"),
    [
        ("ECDHE-ECDSA-AES256-GCM-SHA384:AES128-SHA", {"ECDHE-ECDSA-AES256-GCM-SHA384"}),
        (
            "ECDHE+AESGCM",
            {
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
            },
        ),
        ("HIGH:MEDIUM:!aNULL", set(INTERMEDIATE_TLS12)),
        ("CHACHA20", {"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}),
    ],
    ids=["one-plus-weak", "ecdhe-aesgcm", "broad", "chacha"],
)
def test_ciphers_narrow_the_profile(ciphers: str, expected: set[str]) -> None:
    """--ciphers keeps only the profile's ciphers that it selects: the intersection,
    never anything the profile leaves out."""
    policy = TLSSettings(ciphers=ciphers).policy
    assert set(policy.ciphers.split(":")) == expected
    assert (policy.min_tls, policy.max_tls) == (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3)


def test_narrowed_ciphers_apply_to_handshakes(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A server narrowed to ChaCha20 refuses a TLS 1.2 client offering only another
    intermediate cipher, and serves one offering ChaCha20."""
    settings = _server_settings(tls_files, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305")
    server = server_creator(settings)
    refused = _PlainClient(_tls12_only("ECDHE-ECDSA-AES128-GCM-SHA256"))
    _refused_in_memory(loopback(server, refused, OpenClient()))
    assert _connection_reason(server_log) == "no cipher in common"
    connection = _open(server, _client(tls_files, max_tls=TLSVersion.TLSv1_2))
    assert connection.client_tls.getHandle().get_cipher_name() == (
        "ECDHE-ECDSA-CHACHA20-POLY1305"
    )


@pytest.mark.parametrize(
    "ciphers",
    [
        "AES128-SHA",
        "AES128-GCM-SHA256:AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-CHACHA20-POLY1305",
        "aNULL",
    ],
    ids=["rsa-cbc", "rsa-gcm", "ecdhe-cbc", "dhe-aead", "anonymous"],
)
def test_cipher_string_without_usable_cipher_is_an_error(ciphers: str) -> None:
    """A cipher string selecting only non-ECDHE or non-AEAD ciphers is a
    ConfigurationError naming --ciphers and the ciphers that are allowed."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(ciphers=ciphers)
    assert info.value.option == "ciphers"
    message = str(info.value)
    assert message.startswith(f"ciphers: {ciphers!r} leaves no usable TLS 1.2 cipher")
    assert "ECDHE-RSA-AES128-GCM-SHA256" in message


def test_unknown_cipher_string_is_an_error() -> None:
    """A cipher string OpenSSL does not know is a ConfigurationError naming ciphers."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(ciphers="NOT-A-CIPHER")
    assert info.value.option == "ciphers"
    assert "NOT-A-CIPHER" in str(info.value)


def test_server_flag_with_unusable_ciphers_is_a_usage_error(tls_files: TLSFiles) -> None:
    """The server's --ciphers AES128-SHA is refused by the option parser, naming
    --ciphers."""
    message = _usage_error(
        *identity(tls_files),
        "--ciphers",
        "AES128-SHA",
    )
    assert message.startswith("--ciphers: 'AES128-SHA' leaves no usable TLS 1.2 cipher")


def test_modern_with_max_tls_12_is_an_error() -> None:
    """--profile modern --max-tls 1.2 is a ConfigurationError naming --max-tls and the
    profile's minimum."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(profile=Profile.MODERN, max_tls=TLSVersion.TLSv1_2)
    assert str(info.value) == "max_tls: 1.2 is below the minimum 1.3 of profile modern"


def test_min_tls_refines_a_profile() -> None:
    """--min-tls 1.3 makes intermediate TLS 1.3 only, and --min-tls 1.2 lowers modern to
    TLS 1.2 with the intermediate ciphers."""
    raised = TLSSettings(min_tls=TLSVersion.TLSv1_3).policy
    assert (raised.min_tls, raised.ciphers) == (TLSVersion.TLSv1_3, "")
    lowered = TLSSettings(profile=Profile.MODERN, min_tls=TLSVersion.TLSv1_2).policy
    assert lowered.min_tls is TLSVersion.TLSv1_2
    assert lowered.ciphers.split(":") == INTERMEDIATE_TLS12


def test_twistd_refuses_modern_with_max_tls_12(tls_files: TLSFiles) -> None:
    """twistd tlsecho --profile modern --max-tls 1.2 exits 2 with one line naming
    --max-tls, before listening."""
    result = run_twistd(
        *identity(tls_files),
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--profile",
        "modern",
        "--max-tls",
        "1.2",
        timeout=20,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tlsecho: --max-tls: 1.2 is below the minimum 1.3")
    assert "listening" not in result.stdout


@pytest.mark.parametrize("text", ["ancient", "", "legacy", "intermediate-v5"])
def test_profile_parse_errors(text: str) -> None:
    """Profile.parse refuses anything but intermediate, modern and old, naming the
    option and the expected values."""
    with pytest.raises(ConfigurationError) as info:
        Profile.parse(text)
    assert str(info.value) == (
        f"profile: unknown profile {text!r} (expected intermediate, modern or old)"
    )
    with pytest.raises(ConfigurationError, match=r"^profile: unknown profile"):
        Profile.parse(text, option="profile")


def test_profile_parse_accepts_any_case() -> None:
    """Profile.parse reads the two names in any case, with spaces around."""
    assert Profile.parse(" Modern ") is Profile.MODERN
    assert Profile.parse("INTERMEDIATE") is Profile.INTERMEDIATE


def test_server_flag_with_unknown_profile_is_a_usage_error(tls_files: TLSFiles) -> None:
    """The server's --profile legacy is refused by the option parser, naming --profile."""
    message = _usage_error(
        *identity(tls_files),
        "--profile",
        "legacy",
    )
    assert message == (
        "--profile: unknown profile 'legacy' (expected intermediate, modern or old)"
    )


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        (["--profile", "legacy"], "--profile: unknown profile 'legacy'"),
        (["--ciphers", "AES128-SHA"], "--ciphers: 'AES128-SHA' leaves no usable"),
        (["--profile", "modern", "--max-tls", "1.2"], "--max-tls: 1.2 is below"),
    ],
    ids=["profile", "ciphers", "max-tls"],
)
def test_client_policy_errors_exit_2(arguments: list[str], culprit: str) -> None:
    """tlsecho client refuses a bad profile, an unusable cipher string or a modern
    profile capped at TLS 1.2 with exit 2 and one line naming the option."""
    result = subprocess.run(
        [TLSECHO, "client", *arguments, "127.0.0.1:1"],
        input=b"hello\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(f"tlsecho client: {culprit}")


# From outside: openssl s_client against twistd tlsecho --------------------------------


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_mozilla_groups_accepted(servers: list, rsa_files: TLSFiles, version: str) -> None:
    """A client offering only X25519, only P-256 or only P-384 completes the handshake
    over that group, in TLS 1.2 and 1.3."""
    server = _serve(servers, rsa_files)
    for group, key in [
        ("X25519", "X25519"),
        ("P-256", "ECDH, prime256v1"),
        ("P-384", "ECDH, secp384r1"),
    ]:
        returncode, stdout, stderr = _s_client(server, rsa_files, version, "-groups", group)
        assert returncode == 0, f"{group}: {stdout}{stderr}"
        assert f"Server Temp Key: {key}," in stdout, group
        assert _negotiated(stdout) == ("TLSv1.2" if version == "-tls1_2" else "TLSv1.3")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_other_groups_refused(servers: list, rsa_files: TLSFiles, version: str) -> None:
    """A client offering only ffdhe2048, only X448 or only P-521 is refused with the
    handshake_failure alert (40)."""
    server = _serve(servers, rsa_files)
    for group in ["ffdhe2048", "X448", "P-521"]:
        returncode, stdout, stderr = _s_client(server, rsa_files, version, "-groups", group)
        assert returncode != 0, f"{group}: {stdout}"
        assert _negotiated(stdout) is None, group
        assert "alert handshake failure" in stderr, f"{group}: {stderr}"
        assert "SSL alert number 40" in stderr, group


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_below_tls12_refused_with_protocol_version(
    servers: list, tls_files: TLSFiles, version: str
) -> None:
    """A TLS 1.0 or 1.1 client (its own security level lowered to allow it) gets the
    protocol_version alert (70) from the default server."""
    server = _serve(servers, tls_files)
    returncode, stdout, stderr = _s_client(
        server, tls_files, version, "-cipher", "DEFAULT@SECLEVEL=0"
    )
    assert returncode != 0, stdout
    assert _negotiated(stdout) is None
    assert "alert protocol version" in stderr
    assert "SSL alert number 70" in stderr


def test_modern_server_refuses_tls12_with_protocol_version(
    servers: list, tls_files: TLSFiles
) -> None:
    """openssl s_client -tls1_2 against --profile modern gets the protocol_version
    alert (70), and a TLS 1.3 client is served."""
    server = _serve(servers, tls_files, "--profile", "modern")
    returncode, stdout, stderr = _s_client(server, tls_files, "-tls1_2")
    assert returncode != 0, stdout
    assert "alert protocol version" in stderr
    assert "SSL alert number 70" in stderr
    returncode, stdout, stderr = _s_client(server, tls_files, "-tls1_3")
    assert returncode == 0, stdout + stderr
    assert _negotiated(stdout) == "TLSv1.3"
    server.wait_for(r"TLS handshake failed: protocol version")


def test_weak_cipher_refused_from_outside(servers: list, tls_files: TLSFiles) -> None:
    """openssl s_client -tls1_2 offering only CBC ciphers gets handshake_failure (40)."""
    server = _serve(servers, tls_files)
    returncode, stdout, stderr = _s_client(
        server, tls_files, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:AES128-SHA"
    )
    assert returncode != 0, stdout
    assert "SSL alert number 40" in stderr
    server.wait_for(r"TLS handshake failed: no cipher in common")


def test_no_compression(servers: list, tls_files: TLSFiles) -> None:
    """A TLS 1.2 client asking for compression (s_client -comp) gets none."""
    server = _serve(servers, tls_files)
    returncode, stdout, stderr = _s_client(server, tls_files, "-tls1_2", "-comp")
    assert returncode == 0, stdout + stderr
    assert _negotiated(stdout) == "TLSv1.2"
    assert re.search(r"^Compression: NONE$", stdout, re.M), stdout


def _renegotiate(server: ServerProcess, files: TLSFiles) -> tuple[int | None, str, str]:
    """
    Connect with ``openssl s_client -tls1_2``, wait for the handshake, type ``R`` (which
    asks s_client to renegotiate), and wait for s_client to end (stopped by its PID
    after 15 s).  Returns (returncode or None if it had to be stopped, stdout, stderr).
    """
    process = subprocess.Popen(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(files.ca),
            "-tls1_2",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    output = bytearray()
    errors = bytearray()

    def read(stream: object, into: bytearray) -> None:
        while chunk := stream.read1(65536):
            into.extend(chunk)

    readers = [
        threading.Thread(target=read, args=(process.stdout, output), daemon=True),
        threading.Thread(target=read, args=(process.stderr, errors), daemon=True),
    ]
    for reader in readers:
        reader.start()
    returncode: int | None = None
    try:
        deadline = time.monotonic() + 15
        while b"Verify return code" not in output and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.05)
        assert b"Verify return code: 0 (ok)" in output, bytes(output + errors).decode()
        assert process.stdin is not None
        process.stdin.write(b"R\n")
        process.stdin.flush()
        try:
            returncode = process.wait(15)
        except subprocess.TimeoutExpired:
            returncode = None
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for reader in readers:
            reader.join(10)
        assert process.stdin is not None
        process.stdin.close()
    return returncode, output.decode("utf-8", "replace"), errors.decode("utf-8", "replace")


def test_renegotiation_refused_and_server_keeps_serving(
    servers: list, tls_files: TLSFiles
) -> None:
    """A TLS 1.2 client that tries to renegotiate is refused ("no renegotiation") and its
    connection ends, while the server process keeps serving new clients."""
    server = _serve(servers, tls_files)
    returncode, stdout, stderr = _renegotiate(server, tls_files)
    assert "RENEGOTIATING" in stderr + stdout
    assert returncode is not None, "the connection survived a renegotiation attempt"
    assert returncode != 0, stdout + stderr
    assert "no renegotiation" in stderr
    assert server.process.poll() is None
    result = run_client(server.address, "--ca", str(tls_files.ca), payload=b"after\n")
    assert (result.returncode, result.stdout) == (0, b"after\n"), result.stderr.decode()
