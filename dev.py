#!/usr/bin/env python3
"""
Set up tlsecho in a local virtual environment and run it, its tests or its benchmark.

    python3 dev.py serve [twistd tlsecho options]   # server on the development default
    python3 dev.py test [pytest arguments]          # lint, types, packaging, all tests
    python3 dev.py bench [bench arguments]          # the benchmark (see bench/)

Needs only Python 3.11+ with the venv module.  Everything goes into .venv/ in the
repository; tlsecho is installed as a built package (not editable), so what is
tested is what users install, twistd plugin included.
"""

from __future__ import annotations

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


def setup(extras: str) -> None:
    """Create the virtual environment if needed and install tlsecho into it."""
    if not (BIN / "python").exists():
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as e:  # ensurepip missing on some distributions
            raise SystemExit(
                f"dev.py: cannot create {VENV}: {e} "
                "(on Debian/Ubuntu: apt-get install python3-venv)"
            ) from None
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(*pip, "install", "--upgrade", "pip")
    # Not editable: the wheel is what users get, and Twisted finds the plugin
    # only in an installed twisted/plugins directory.
    _run(*pip, "install", "--force-reinstall", "--no-deps", f"{ROOT}")
    _run(*pip, "install", f"{ROOT}[{extras}]")


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
