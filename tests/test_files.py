"""
Tests for tlsecho._settings._files: reading the files tlsecho is given and refusing those
others may read or change, on real files in a temporary directory.

What the server, the client and C{tlsecho check} say about such files is tested
end to end in test_attacks_files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tlsecho import ConfigurationError
from tlsecho._settings._files import (
    check_keylog_file,
    check_not_writable,
    check_private_file,
    read_file,
)

from conftest import TLSFiles


def _write(directory: Path, name: str, data: bytes, mode: int = 0o600) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_read_file_returns_contents(tmp_path: Path) -> None:
    """read_file returns the whole file as bytes."""
    path = _write(tmp_path, "f", b"\x00contents\n")
    assert read_file(path, "--ca") == b"\x00contents\n"


def test_read_file_through_a_regular_file(tls_files: TLSFiles) -> None:
    """A path that goes through a regular file is refused with the system's words."""
    path = tls_files.server_cert / "child.pem"
    with pytest.raises(ConfigurationError) as info:
        read_file(path, "--ca")
    assert str(info.value) == f"ca {path}: cannot read: Not a directory"


def test_read_missing_file(tmp_path: Path) -> None:
    """A missing file is refused, naming the option and the file."""
    path = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError) as info:
        read_file(path, "--ca")
    assert str(info.value) == f"ca {path}: no such file"


def test_read_directory(tmp_path: Path) -> None:
    """A directory is refused as not being a file."""
    with pytest.raises(ConfigurationError) as info:
        read_file(tmp_path, "--cert")
    assert str(info.value) == f"certificate {tmp_path}: is a directory, not a file"


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o660])
def test_private_file_group_allowed(tmp_path: Path, mode: int) -> None:
    """A secret file its owner and group may use passes when the group may."""
    check_private_file(_write(tmp_path, "key", b"", mode), "--key")


@pytest.mark.parametrize(
    ("mode", "how"), [(0o604, "readable"), (0o602, "writable"), (0o666, "readable")]
)
def test_private_file_open_to_others(tmp_path: Path, mode: int, how: str) -> None:
    """A secret file others may read or write is refused, with the chmod that fixes
    it."""
    path = _write(tmp_path, "key", b"", mode)
    with pytest.raises(ConfigurationError) as info:
        check_private_file(path, "--key")
    assert str(info.value) == (
        f"private_key {path}: private key file is {how} by other users "
        f"(mode {mode:04o}); fix it with: chmod o-rwx {path}"
    )


@pytest.mark.parametrize(("mode", "how"), [(0o640, "readable"), (0o620, "writable")])
def test_private_file_owner_only(tmp_path: Path, mode: int, how: str) -> None:
    """Without group access, a file its group may read or write is refused."""
    path = _write(tmp_path, "dev-ca.key", b"", mode)
    with pytest.raises(ConfigurationError) as info:
        check_private_file(path, "development CA", "CA private key", group=False)
    assert str(info.value) == (
        f"development CA {path}: CA private key file is {how} by its group or other "
        f"users (mode {mode:04o}); fix it with: chmod 600 {path}"
    )


def test_private_file_status_given(tmp_path: Path) -> None:
    """The status of the open file is checked instead of the path's."""
    path = _write(tmp_path, "key", b"", 0o644)
    check_private_file(path, "--key", status=os.stat(_write(tmp_path, "ok", b"")))


@pytest.mark.parametrize("mode", [0o644, 0o755, 0o700])
def test_not_writable_passes(tmp_path: Path, mode: int) -> None:
    """A file only its owner may write passes, whoever may read it."""
    check_not_writable(_write(tmp_path, "ca.pem", b"", mode), "--ca", "CA file", "644")


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_writable_by_others(tmp_path: Path, mode: int) -> None:
    """A file its group or others may write is refused, with the suggested mode."""
    path = _write(tmp_path, "ca.pem", b"", mode)
    with pytest.raises(ConfigurationError) as info:
        check_not_writable(path, "--ca", "CA file", "644")
    assert str(info.value) == (
        f"ca {path}: CA file is writable by its group or other users "
        f"(mode {mode:04o}); fix it with: chmod 644 {path}"
    )


def test_keylog_file_not_yet_there(tmp_path: Path) -> None:
    """A key log that does not exist yet passes: it is made private."""
    check_keylog_file(tmp_path / "keys.log", "--keylog-file")


def test_keylog_file_private(tmp_path: Path) -> None:
    """The user's own private key log passes."""
    check_keylog_file(_write(tmp_path, "keys.log", b""), "--keylog-file")


def test_keylog_file_directory(tmp_path: Path) -> None:
    """A directory is not a key log."""
    with pytest.raises(ConfigurationError) as info:
        check_keylog_file(tmp_path, "--keylog-file")
    assert str(info.value) == f"keylog_file {tmp_path}: is a directory, not a file"


def test_keylog_file_readable_by_group(tmp_path: Path) -> None:
    """A key log its group may read is refused: owner only."""
    path = _write(tmp_path, "keys.log", b"", 0o640)
    with pytest.raises(ConfigurationError) as info:
        check_keylog_file(path, "--keylog-file")
    assert str(info.value).endswith(f"(mode 0640); fix it with: chmod 600 {path}")
