"""
tlsecho's version, and the versions of what it runs on, for C{--version}, the
server's start line and C{tlsecho check}.

The version comes from the installed package's metadata (pyproject.toml is its
one source).  When this tlsecho is not the installed one (run from a checkout
with C{PYTHONPATH=src}, say), the checkout's pyproject.toml says it; failing
that it is C{0+unknown}.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["UNKNOWN", "describe", "package_version", "versions"]

#: The version reported when neither metadata nor a checkout says it (PEP 440).
UNKNOWN = "0+unknown"

#: The package directory (this module is in its _app folder).
_HERE = Path(__file__).resolve().parent.parent


def _installed() -> str | None:
    """
    The metadata's version, if an installed tlsecho is this very one.

    Several may be visible (a build's C{tlsecho.egg-info} in the current
    directory, say): the one whose files are these is the one that counts.
    """
    try:
        candidates = list(importlib.metadata.distributions(name="tlsecho"))
    except Exception:
        return None
    for distribution in candidates:
        try:
            located = Path(str(distribution.locate_file("tlsecho/__init__.py"))).resolve()
        except (OSError, NotImplementedError):
            continue
        if located.parent == _HERE:
            return distribution.version
    return None


def _checkout() -> str | None:
    """The version in the pyproject.toml of the checkout this module is in."""
    pyproject = _HERE.parent.parent / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    return match[1] if match else None


def package_version() -> str:
    """tlsecho's version: the package metadata's, else the checkout's, else unknown."""
    return _installed() or _checkout() or UNKNOWN


def versions() -> dict[str, str]:
    """tlsecho's version and those of Twisted, pyOpenSSL and the OpenSSL it uses."""
    import OpenSSL
    import twisted
    from OpenSSL.SSL import OPENSSL_VERSION, OpenSSL_version

    # "OpenSSL 3.5.1 1 Jul 2025": the library pyOpenSSL (cryptography) is linked with.
    openssl = OpenSSL_version(OPENSSL_VERSION).decode("ascii", "replace")
    return {
        "tlsecho": package_version(),
        "twisted": twisted.__version__,
        "pyopenssl": OpenSSL.__version__,
        "openssl": openssl.removeprefix("OpenSSL ").strip(),
    }


def describe(known: Mapping[str, str] | None = None) -> str:
    """
    One line: C{tlsecho 0.1.0 (Twisted 26.10.0, pyOpenSSL 26.4.0, OpenSSL 3.5.1 ...)}.

    @param known: What L{versions} returned; by default, asks it.
    """
    v = versions() if known is None else known
    return (
        f"tlsecho {v['tlsecho']} (Twisted {v['twisted']}, pyOpenSSL {v['pyopenssl']}, "
        f"OpenSSL {v['openssl']})"
    )
