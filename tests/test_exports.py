"""
Pin tlsecho's public surface and the shape of its twistd plugin file.

The exports are a contract: a name added or removed here is an API change. The plugin
file is imported by every C{twistd} run, so it must import nothing heavy, and Twisted's
plugin directories must not become regular packages.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tlsecho

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "twisted" / "plugins" / "tlsecho_plugin.py"

EXPORTS = [
    "DEFAULT_CIPHERS",
    "ConfigurationError",
    "ConnectFailed",
    "ConnectionDropped",
    "DevelopmentCertificate",
    "EchoClientProtocol",
    "EchoError",
    "EchoMismatch",
    "EchoServerFactory",
    "EchoServerProtocol",
    "EchoService",
    "HandshakeFailed",
    "Material",
    "PeerRejected",
    "Profile",
    "SNICertificate",
    "ServerConfiguration",
    "ServerConnectionCreator",
    "TLSSettings",
    "TLSVersion",
    "VerifyMode",
    "client_creator",
    "client_endpoint",
    "echo",
    "ensure_development_certificate",
    "server_creator",
    "server_endpoint",
]


def test_all_is_pinned() -> None:
    """tlsecho.__all__ is exactly the pinned list, in order."""
    assert tlsecho.__all__ == EXPORTS


@pytest.mark.parametrize("name", EXPORTS)
def test_export_is_importable(name: str) -> None:
    """Each exported name can be imported from tlsecho."""
    module = importlib.import_module("tlsecho")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from tlsecho import {name}", namespace)
    assert namespace[name] is getattr(tlsecho, name)


def test_star_import_gives_exactly_the_exports() -> None:
    """from tlsecho import * binds exactly the exported names."""
    namespace: dict[str, object] = {}
    exec("from tlsecho import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(EXPORTS)


def test_tap_module_exports_options_and_make_service() -> None:
    """tlsecho.tap holds exactly Options and makeService."""
    tap = importlib.import_module("tlsecho.tap")
    assert sorted(tap.__all__) == ["Options", "makeService"]


def _plugin_tree() -> ast.Module:
    return ast.parse(PLUGIN.read_text(), str(PLUGIN))


def test_plugin_imports_only_service_maker() -> None:
    """The plugin file imports only from twisted.application.service, nothing else."""
    imports = [
        node
        for node in ast.walk(_plugin_tree())
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert imports, "the plugin file must import ServiceMaker"
    for node in imports:
        assert isinstance(node, ast.ImportFrom), ast.unparse(node)
        assert node.module == "twisted.application.service", ast.unparse(node)
        assert node.level == 0


def test_plugin_names_no_tlsecho_or_openssl_module_in_code() -> None:
    """No import of tlsecho, OpenSSL or the reactor hides in the plugin file's code."""
    source = ast.unparse(_plugin_tree())
    for forbidden in ("import tlsecho", "from tlsecho", "OpenSSL", "reactor", "__import__"):
        assert forbidden not in source


def test_plugin_service_maker_names_tap_module_by_string() -> None:
    """serviceMaker is ServiceMaker("tlsecho", "tlsecho.tap", <description>, "tlsecho")."""
    assignments = [
        node
        for node in _plugin_tree().body
        if isinstance(node, ast.Assign)
        and [ast.unparse(t) for t in node.targets] == ["serviceMaker"]
    ]
    (assignment,) = assignments
    call = assignment.value
    assert isinstance(call, ast.Call)
    assert ast.unparse(call.func) == "ServiceMaker"
    arguments = [ast.literal_eval(a) for a in call.args]
    assert len(arguments) == 4
    assert arguments[0] == "tlsecho"
    assert arguments[1] == "tlsecho.tap"
    assert isinstance(arguments[2], str)
    assert arguments[2]
    assert arguments[3] == "tlsecho"


def test_plugin_file_is_named_tlsecho_plugin() -> None:
    """The plugin file is twisted/plugins/tlsecho_plugin.py, not tlsecho.py."""
    assert PLUGIN.is_file()
    assert not (ROOT / "twisted" / "plugins" / "tlsecho.py").exists()


@pytest.mark.parametrize("directory", ["twisted", "twisted/plugins"])
def test_no_init_in_twisted_plugin_directories(directory: str) -> None:
    """twisted/ and twisted/plugins/ in the repository have no __init__.py."""
    assert (ROOT / directory).is_dir()
    assert not (ROOT / directory / "__init__.py").exists()
