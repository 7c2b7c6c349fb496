"""
dev.py reinstalls tlsecho into its virtual environment only when the source changed:
a stamp in the environment holds the hash of the files the package is built from and
the extras installed, so a second C{python3 dev.py serve} starts at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from _processes import LOOPBACK_LISTEN

ROOT = Path(__file__).resolve().parent.parent


def _load_dev(venv: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TLSECHO_VENV", str(venv))
    spec = importlib.util.spec_from_file_location("tlsecho_dev_under_test", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Dev:
    """dev.py on a scratch copy of the tree, with pip replaced by a recorder."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = tmp_path / "checkout"
        self.root.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (ROOT / name).exists():
                shutil.copy(ROOT / name, self.root / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
        for name in ("src", "twisted"):
            shutil.copytree(ROOT / name, self.root / name, ignore=ignore)
        venv = tmp_path / "venv"
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").touch()  # an existing environment: no venv made
        self.module = _load_dev(venv, monkeypatch)
        self.module.ROOT = self.root
        self.commands: list[list[str]] = []
        self.fail = False

        def run(*command: object, **kwargs: object) -> None:
            self.commands.append([str(c) for c in command])
            if self.fail:
                raise SystemExit(1)

        self.module._run = run

    def setup(self, extras: str) -> list[list[str]]:
        """The commands C{setup(extras)} ran."""
        self.commands = []
        self.module.setup(extras)
        return self.commands


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dev:
    return Dev(tmp_path, monkeypatch)


def _installs(commands: list[list[str]]) -> list[str]:
    return [c[c.index("install") + 1 :][-1] for c in commands if "install" in c]


def test_first_setup_installs_and_stamps(dev: Dev) -> None:
    """Without a stamp the package is (re)installed, then the stamp is written."""
    commands = dev.setup("test")
    assert _installs(commands) == [str(dev.root), f"{dev.root}[test]"]
    assert not any("--upgrade" in c for c in commands)  # pip only for a new venv
    assert dev.module.STAMP.exists()


def test_second_setup_installs_nothing(dev: Dev) -> None:
    """The same source and extras again: nothing is run."""
    dev.setup("test")
    assert dev.setup("test") == []


def test_fewer_extras_install_nothing(dev: Dev) -> None:
    """After 'test,lint', 'test' (dev.py serve after dev.py test) installs nothing."""
    dev.setup("test,lint")
    assert dev.setup("test") == []
    assert dev.setup("lint") == []


def test_more_extras_install(dev: Dev) -> None:
    """Extras not installed yet are installed, and those before are kept in the stamp."""
    dev.setup("test")
    assert _installs(dev.setup("test,lint"))[-1] == f"{dev.root}[test,lint]"
    assert dev.setup("test") == []
    assert dev.setup("test,lint") == []


@pytest.mark.parametrize(
    "change",
    [
        "src/tlsecho/__main__.py",
        "twisted/plugins/tlsecho_plugin.py",
        "pyproject.toml",
        "src/tlsecho/new_module.py",
    ],
)
def test_a_source_change_reinstalls(dev: Dev, change: str) -> None:
    """Editing or adding a file the package is built from reinstalls it."""
    dev.setup("test")
    path = dev.root / change
    path.write_text((path.read_text() if path.exists() else "") + "\n# changed\n")
    assert _installs(dev.setup("test")) == [str(dev.root), f"{dev.root}[test]"]
    assert dev.setup("test") == []


def test_removing_a_source_file_reinstalls(dev: Dev) -> None:
    """A file removed from the tree changes the hash too."""
    dev.setup("test")
    (dev.root / "src" / "tlsecho" / "py.typed").unlink()
    assert _installs(dev.setup("test")) != []


def test_bytecode_and_caches_do_not_reinstall(dev: Dev) -> None:
    """__pycache__, .pyc, Twisted's dropin.cache and egg-info are not source."""
    dev.setup("test")
    cache = dev.root / "src" / "tlsecho" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-311.pyc").write_bytes(b"\0")
    (dev.root / "twisted" / "plugins" / "dropin.cache").write_bytes(b"\0")
    (dev.root / "src" / "tlsecho.egg-info").mkdir()
    (dev.root / "src" / "tlsecho.egg-info" / "PKG-INFO").write_text("x")
    assert dev.setup("test") == []


def test_failed_install_leaves_no_stamp(dev: Dev) -> None:
    """An install that fails is retried next time."""
    dev.setup("test")
    (dev.root / "src" / "tlsecho" / "__main__.py").write_text("# broken\n")
    dev.fail = True
    with pytest.raises(SystemExit):
        dev.setup("test")
    assert not dev.module.STAMP.exists()
    dev.fail = False
    assert _installs(dev.setup("test")) != []


def test_the_real_tree_hash_is_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing the checkout twice gives the same hash (no time or order in it)."""
    module = _load_dev(tmp_path / "venv", monkeypatch)
    assert module.source_hash() == module.source_hash()
    assert len(module.source_hash()) == 64


@pytest.mark.subprocess
def test_second_serve_goes_straight_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``python3 dev.py serve`` with this source installed already (the stamp
    says so; the environment is this test run's own Python and twistd) runs no pip
    and goes straight to the server, which listens.  How long that takes is measured
    by hand, not asserted here (docs/development.md quotes the figure)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "twistd"):
        (venv / "bin" / name).symlink_to(Path(sys.executable).parent / name)
    module = _load_dev(venv, monkeypatch)
    module.STAMP.write_text(
        json.dumps({"hash": module.source_hash(), "extras": ["test"]}) + "\n"
    )
    env = {**os.environ, "TLSECHO_VENV": str(venv)}

    def start() -> None:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "dev.py"), "serve", "--listen", LOOPBACK_LISTEN],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            output = []
            for line in process.stdout:
                output.append(line)
                if "tlsecho listening on" in line:
                    break
            else:
                pytest.fail("dev.py serve did not listen:\n" + "".join(output))
            assert "has this source installed" in output[0], output
            assert not any("pip" in line for line in output), output
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(20)

    start()  # makes the development CA
    start()  # and the second start finds it
