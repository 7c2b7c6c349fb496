#!/usr/bin/env python3
"""
Set up tlsecho in a local virtual environment and run it, its tests or its benchmark.

    python3 dev.py serve [twistd tlsecho options]   # server on the development default
    python3 dev.py test [pytest arguments]          # lint, types, packaging, all tests
    python3 dev.py bench [bench arguments]          # the benchmark (see bench/)

Needs only Python 3.11+ with the venv module.  Everything goes into .venv/ in the
repository; tlsecho is installed as a built package (not editable), so what is
tested is what users install, twistd plugin included.  It is reinstalled only
when its source changed: .venv/tlsecho-installed.json holds the hash of the
files it is built from (pyproject.toml, README.md, LICENSE, src/, twisted/).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("TLSECHO_VENV", ROOT / ".venv"))
BIN = VENV / "bin"


def _run(*command: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    result = subprocess.run([str(c) for c in command], check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise SystemExit(result.returncode)


#: What the installed package is built from: a change to any of them reinstalls.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "src", "twisted")
#: In .venv: the hash of SOURCES and the extras installed from them.
STAMP = VENV / "tlsecho-installed.json"


def source_hash(root: Path | None = None) -> str:
    """SHA-256 over the names and contents of the files the package is built from."""
    root = root or ROOT
    digest = hashlib.sha256()
    for name in SOURCES:
        top = root / name
        files = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in files:
            parts = path.relative_to(root).parts
            if (
                not path.is_file()
                or "__pycache__" in parts
                or path.suffix == ".pyc"
                or path.name == "dropin.cache"
                or any(part.endswith(".egg-info") for part in parts)
            ):
                continue
            digest.update("/".join(parts).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _installed() -> dict[str, object]:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def setup(extras: str) -> None:
    """
    Create the virtual environment if needed and install tlsecho into it,
    unless the stamp in it says this very source, with these extras, is
    installed already.
    """
    fresh = not (BIN / "python").exists()
    if fresh:
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as e:  # ensurepip missing on some distributions
            raise SystemExit(
                f"dev.py: cannot create {VENV}: {e} "
                "(on Debian/Ubuntu: apt-get install python3-venv)"
            ) from None
    wanted = set(extras.split(","))
    tree = source_hash()
    stamp = _installed()
    have = stamp.get("extras")
    if stamp.get("hash") == tree and isinstance(have, list) and wanted <= set(have):
        print(f"dev.py: {VENV} has this source installed ({tree[:12]})", flush=True)
        return
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    if fresh:
        _run(*pip, "install", "--upgrade", "pip")
    STAMP.unlink(missing_ok=True)  # an install that fails half-way is not a stamp
    # Not editable: the wheel is what users get, and Twisted finds the plugin
    # only in an installed twisted/plugins directory.
    _run(*pip, "install", "--force-reinstall", "--no-deps", f"{ROOT}")
    _run(*pip, "install", f"{ROOT}[{extras}]")
    # Extras installed for this same source stay installed.
    kept = set(have) if stamp.get("hash") == tree and isinstance(have, list) else set()
    STAMP.write_text(json.dumps({"hash": tree, "extras": sorted(kept | wanted)}) + "\n")


def serve(arguments: list[str]) -> None:
    """Run the server in the foreground; with no options, the development default."""
    setup("test")
    os.execv(  # noqa: S606 (replaces this process with twistd; no shell)
        BIN / "twistd", [str(BIN / "twistd"), "-n", "--pidfile=", "tlsecho", *arguments]
    )


def test(arguments: list[str]) -> None:
    """Lint, type-check, check the package, then run every test."""
    setup("test,lint")
    os.chdir(ROOT)
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(BIN / "python", "-m", "pytest", *arguments)


def bench(arguments: list[str]) -> None:
    """Run the benchmark against its peers."""
    setup("test,bench")
    os.chdir(ROOT)
    _run(BIN / "python", "-m", "bench", *arguments)


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py may run on any python3)
        raise SystemExit("dev.py: tlsecho needs Python 3.11 or newer")
    commands = {"serve": serve, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: python3 dev.py {{{'|'.join(commands)}}} [arguments]")
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
