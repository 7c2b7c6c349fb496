"""
Tests for tlsecho._tls._tlswords: TLS alerts, OpenSSL reasons and verify errors in
words, as plain text in and out (no transport, no OpenSSL).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tlsecho._tls import _tlswords
from tlsecho._tls._tlswords import reason_words, verify_error_words

_HANDSHAKE_FAILURE = (
    "the peer refused the handshake (handshake failure: no common cipher "
    "or version, or a required client certificate missing)"
)


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("no shared cipher", "no cipher in common"),
        ("peer did not return a certificate", "no client certificate"),
        ("unsupported protocol", "protocol version: no TLS version in common"),
        ("wrong version number", "the peer does not speak TLS (wrong version number)"),
        ("http request", "the peer sent plain HTTP to a TLS port"),
        ("unexpected eof while reading", "connection closed without close_notify"),
        (
            "no application protocol in common (ALPN)",
            "no application protocol in common (ALPN)",
        ),
    ],
)
def test_local_reasons(reason: str, words: str) -> None:
    """OpenSSL's reasons for failures found locally have words of their own."""
    assert reason_words(reason) == words


@pytest.mark.parametrize(
    "prefix",
    ["sslv3 alert ", "tlsv1 alert ", "tlsv13 alert ", "tls alert ", "ssl/tls alert "],
)
def test_alert_whatever_the_prefix(prefix: str) -> None:
    """An alert from the peer is known by any of the prefixes OpenSSL gives it."""
    assert reason_words(prefix + "handshake failure") == _HANDSHAKE_FAILURE


@pytest.mark.parametrize(
    ("alert", "words"),
    [
        ("certificate required", "server requires a client certificate"),
        ("unknown ca", "the peer does not trust our certificate (unknown CA)"),
        ("certificate expired", "the peer says our certificate has expired"),
        ("protocol version", "protocol version: the peer refused our TLS versions"),
        ("insufficient security", "no cipher in common (insufficient security)"),
        ("unrecognized name", "the server does not serve that name (unrecognized name)"),
    ],
)
def test_alerts(alert: str, words: str) -> None:
    """Alerts people meet have words of their own."""
    assert reason_words("tlsv1 alert " + alert) == words


def test_unknown_alert_is_named() -> None:
    """An alert with no words of its own is named as an alert from the peer."""
    assert reason_words("tlsv13 alert bad weather") == (
        "the peer sent the alert 'bad weather'"
    )


@pytest.mark.parametrize("reason", ["odd thing", "", "alert handshake failure"])
def test_unknown_reason(reason: str) -> None:
    """A reason that is neither known nor an alert has no words."""
    assert reason_words(reason) is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            "unknown CA (unable to get local issuer certificate)",
        ),
        ("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate that is not trusted"),
        ("CERT_HAS_EXPIRED", "certificate has expired"),
        ("CERT_REVOKED", "certificate revoked"),
        ("HOSTNAME_MISMATCH", "hostname mismatch"),
    ],
)
def test_verify_errors(name: str, words: str) -> None:
    """Verify errors people meet have words of their own, whatever the issuer."""
    assert verify_error_words(name, 0) == words
    assert verify_error_words(name, 0, "CN=Some CA") == words


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("UNABLE_TO_GET_CRL", "no CRL for CN=Some CA (--crl)"),
        ("CRL_HAS_EXPIRED", "the CRL for CN=Some CA has expired"),
        (
            "KEYUSAGE_NO_CRL_SIGN",
            "the CA CN=Some CA may not sign CRLs (key usage), yet its CRL is needed",
        ),
    ],
)
def test_crl_errors_name_the_issuer(name: str, words: str) -> None:
    """A CRL error names the CRL by the issuer of the certificate being checked."""
    assert verify_error_words(name, 0, "CN=Some CA") == words


def test_every_crl_error_names_the_issuer() -> None:
    """Every CRL error's words say whose CRL it is."""
    for name in _tlswords._CRL_ERRORS:
        assert "CN=Issuer" in verify_error_words(name, 0, "CN=Issuer"), name


def test_crl_error_without_issuer() -> None:
    """Without a known issuer, a CRL error speaks of the certificate's issuer."""
    assert verify_error_words("CRL_HAS_EXPIRED", 12) == (
        "the CRL for the certificate's issuer has expired"
    )


def test_named_verify_error_spelt_out() -> None:
    """A verify error with a name but no words of its own is spelt out from its name."""
    assert verify_error_words("CERT_CHAIN_TOO_LONG", 22) == "cert chain too long"


def test_unnamed_verify_error_by_number() -> None:
    """A verify error nobody knows by name is given by number."""
    assert verify_error_words(None, 99999) == "verify error 99999"


def test_words_are_one_line() -> None:
    """Every phrase fits in one log line."""
    tables = (
        _tlswords._VERIFY_ERRORS,
        _tlswords._CRL_ERRORS,
        _tlswords._ALERTS,
        _tlswords._SSL_REASONS,
    )
    for table in tables:
        for words in table.values():
            assert words.isprintable(), words
            assert len(words) < 200, words


def test_pure() -> None:
    """The module imports nothing but the standard library's __future__."""
    tree = ast.parse(Path(_tlswords.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"__future__"}
