"""
Tests for settings apart from material: L{tlsecho.TLSSettings} holds only what was
asked for, with the per-side checks and the C{verify} default beside it, and
L{tlsecho.Material} is the loaded files, made by one step, L{tlsecho.Material.load}.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tlsecho import (
    ConfigurationError,
    Material,
    ServerConfiguration,
    TLSSettings,
    VerifyMode,
    client_creator,
    server_creator,
)
from tlsecho._settings._options import Side

from conftest import TLSFiles

#: Every field of TLSSettings: what can be asked for, and nothing loaded.
REQUESTED = [
    "certificate",
    "private_key",
    "key_passphrase_file",
    "ca",
    "verify",
    "profile",
    "ciphers",
    "tls13_ciphers",
    "groups",
    "min_tls",
    "max_tls",
    "allow_cn",
    "allow_dns",
    "allow_uri",
    "allow_spki",
    "pin_spki",
    "sni",
    "sni_strict",
    "alpn",
    "crl",
    "ocsp_response",
    "require_ocsp_staple",
    "keylog_file",
    "ticket_key_file",
]


def _server(tls_files: TLSFiles, **more: object) -> TLSSettings:
    return TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        **more,  # type: ignore[arg-type]
    )


def test_settings_hold_only_the_request(tls_files: TLSFiles) -> None:
    """TLSSettings' fields are the requested values; nothing loaded is kept on it."""
    settings = _server(tls_files, ca=(tls_files.client_ca,))
    assert [f.name for f in dataclasses.fields(settings)] == REQUESTED
    for loaded in ("chain", "key", "trusted", "crls", "ocsp_staple", "ticket_keys"):
        assert not hasattr(settings, loaded), loaded


def test_verify_default_per_side() -> None:
    """verify=None: the server asks for no certificate, the client verifies."""
    settings = TLSSettings()
    assert settings.verify_for(Side.SERVER) is VerifyMode.NONE
    assert settings.verify_for(Side.CLIENT) is VerifyMode.REQUIRED


@pytest.mark.parametrize("mode", list(VerifyMode))
def test_verify_given_holds_on_both_sides(tls_files: TLSFiles, mode: VerifyMode) -> None:
    """An explicit verify mode is the same on either side."""
    settings = TLSSettings(ca=(tls_files.ca,), verify=mode)
    assert settings.verify_for(Side.SERVER) is mode
    assert settings.verify_for(Side.CLIENT) is mode


def test_check_for_server_reads_no_file(tls_files: TLSFiles) -> None:
    """The server's checks need the request only: they hold after the files went."""
    settings = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    pinned = settings.replace(pin_spki=("A" * 43 + "=",))
    tls_files.server_cert.unlink()
    settings.check_for_server()
    with pytest.raises(ConfigurationError, match=r"^pin_spki: is a client option$"):
        pinned.check_for_server()


def test_check_for_server_refusals(tls_files: TLSFiles) -> None:
    """A server needs a certificate, and ca to verify clients."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(ca=(tls_files.ca,)).check_for_server()
    assert str(info.value) == "certificate: the server needs a certificate and key"
    with pytest.raises(ConfigurationError) as info:
        _server(tls_files, verify=VerifyMode.OPTIONAL).check_for_server()
    assert str(info.value) == (
        "verify: optional needs ca: the CA certificates that client "
        "certificates must chain to"
    )


def test_check_for_client_refusals(tls_files: TLSFiles) -> None:
    """A client takes no optional verification and no server option."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(verify=VerifyMode.OPTIONAL).check_for_client()
    assert str(info.value) == (
        "verify: optional is a server policy; the client takes required or none"
    )
    with pytest.raises(ConfigurationError, match="are server options, not client"):
        TLSSettings(sni_strict=True).check_for_client()
    TLSSettings(verify=VerifyMode.NONE).check_for_client()


def test_material_of_default_settings_is_empty() -> None:
    """Settings naming no file load into empty material."""
    assert Material.load(TLSSettings()) == Material()
    assert Material().crls == ()


def test_material_is_frozen(tls_files: TLSFiles) -> None:
    """Material is an immutable value."""
    material = Material.load(_server(tls_files))
    with pytest.raises(dataclasses.FrozenInstanceError):
        material.key = None  # type: ignore[misc]


def test_material_load_names_the_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Loading raises the one-line error construction raises, for a file gone since."""
    settings = _server(tls_files)
    tls_files.server_key.unlink()
    with pytest.raises(ConfigurationError) as info:
        Material.load(settings)
    assert str(info.value) == f"private_key {tls_files.server_key}: no such file"


def test_server_creator_serves_the_given_material(tls_files: TLSFiles) -> None:
    """A creator given material serves it; without, it loads its own."""
    settings = _server(tls_files)
    material = Material.load(settings)
    assert server_creator(settings, material).material is material
    loaded = server_creator(settings).material
    assert loaded is not material
    assert loaded.chain == material.chain


def test_client_creator_takes_material(tls_files: TLSFiles) -> None:
    """The client creator uses material it is given (the client CLI loads it once)."""
    settings = TLSSettings(ca=(tls_files.ca,))
    material = Material.load(settings)
    tls_files.ca.unlink()
    assert client_creator(settings, "localhost", material=material) is not None
    with pytest.raises(ConfigurationError, match="no such file"):
        client_creator(settings, "localhost")


def test_configuration_material_is_its_creators(tls_files: TLSFiles) -> None:
    """ServerConfiguration.material is what its creator serves; reread loads anew."""
    configuration = ServerConfiguration(settings=_server(tls_files))
    assert configuration.material is configuration.creator.material
    reread = configuration.reread()
    assert reread.settings is configuration.settings
    assert reread.material is not configuration.material
    assert reread.material.chain == configuration.material.chain
