"""
The package's layers, kept apart: each folder imports only the folders above it.

    _settings  settings and files (the option table, TLSSettings, material)
       |
    _tls       pyOpenSSL contexts, connection creators, reload, diagnosis
       |
    _net       endpoints, listen descriptions, PROXY, the echo protocols
       |
    _app       configuration, TOML, the service, workers, metrics, logs, CLI

The public modules (C{tlsecho}, C{tlsecho.tap}, C{tlsecho.client},
C{tlsecho.check}, C{tlsecho.__main__}) sit on top.
These tests read every module's imports (its syntax tree, so an import under
C{TYPE_CHECKING} counts too) and check the drawing holds, and that the modules
meant to be pure text import neither Twisted nor OpenSSL.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "tlsecho"
LAYERS = ("_settings", "_tls", "_net", "_app")

#: Modules of pure text and values: no Twisted, no OpenSSL, no cryptography.
PURE = (
    "_settings/_text.py",
    "_settings/_errors.py",
    "_settings/_options.py",
    "_settings/_reference_name.py",
    "_settings/_values.py",
    "_settings/_service_options.py",
    "_settings/_service_rows.py",
    "_app/_metric_labels.py",
    "_app/_log_schema.py",
    "_tls/_tlswords.py",
    "_net/_connlog.py",
    "_net/_listen.py",
    "_net/_comparator.py",
)


def _modules(layer: str) -> list[Path]:
    return sorted((SRC / layer).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    """
    Every module C{path} imports, as absolute dotted names.
    """
    package = ["tlsecho", *path.relative_to(SRC).parent.parts]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    names.extend(f"{module}.{alias.name}" for alias in node.names)
                    continue
                names.append(module)
            elif node.module:
                names.append(node.module)
    return names


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "tlsecho" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return None


def test_every_private_module_is_in_a_layer() -> None:
    """No private module lies loose beside the public ones."""
    loose = sorted(
        p.name for p in SRC.glob("_*.py") if p.name not in ("__init__.py", "__main__.py")
    )
    assert loose == []


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_layers_above(layer: str) -> None:
    """A layer's modules import only their own layer and the layers above it."""
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    wrong = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules(layer)
        for name in _imports(path)
        if name.startswith("tlsecho")
        and (
            _layer_of(name) not in allowed
            or name.split(".")[1] in ("tap", "client", "check", "__main__")
        )
    }
    assert sorted(wrong) == []


@pytest.mark.parametrize("layer", ["_settings", "_net"])
def test_layer_does_not_import_openssl(layer: str) -> None:
    """Settings and network modules never import OpenSSL themselves."""
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules(layer)
        for name in _imports(path)
        if name.split(".")[0] == "OpenSSL"
    ]
    assert wrong == []


def test_settings_layer_has_no_reactor() -> None:
    """Settings and files modules never import the reactor."""
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules("_settings")
        for name in _imports(path)
        if name.startswith("twisted.internet.reactor")
        or name in ("twisted.internet.reactor",)
    ]
    assert wrong == []


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_twisted_or_openssl(module: str) -> None:
    """Text and value modules import neither Twisted, OpenSSL nor cryptography."""
    found = [
        name
        for name in _imports(SRC / module)
        if name.split(".")[0] in ("twisted", "OpenSSL", "cryptography", "zope")
    ]
    assert found == []


@pytest.mark.parametrize(
    "path", sorted(p for p in SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC))
)
def test_modules_are_small(path: Path) -> None:
    """No module is much over 300 lines (the style guide's size for one job)."""
    assert len(path.read_text().splitlines()) <= 330
