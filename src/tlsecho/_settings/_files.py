"""
Read the files tlsecho is given, and refuse those that others may read or change.

Every function takes the option the file came from, so that each problem becomes a
L{ConfigurationError} naming the option, the file and the reason, and a permission
problem says which C{chmod} fixes it.  Only mode bits and owners are checked, never
C{os.access}, so the checks hold for root too.  Needs nothing but the standard
library.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._errors import ConfigurationError

__all__ = ["check_keylog_file", "check_not_writable", "check_private_file", "read_file"]


def read_file(path: Path, option: str) -> bytes:
    """
    Read C{path} whole, or raise a L{ConfigurationError} saying why it cannot be.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(option, "no such file", path) from None
    except IsADirectoryError:
        raise ConfigurationError(option, "is a directory, not a file", path) from None
    except PermissionError:
        raise ConfigurationError(option, "permission denied", path) from None
    except OSError as e:
        raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None


def check_private_file(
    path: Path,
    option: str,
    what: str = "private key",
    *,
    group: bool = True,
    status: os.stat_result | None = None,
) -> None:
    """
    Refuse a secret file that users other than its owner (and, with C{group},
    its group) may read or write.

    The one permission check for every secret file tlsecho reads or writes:
    private keys, key passphrases and session-ticket keys (group access
    allowed, for a group of services sharing them), and the development CA's
    keys and the key log (owner only: tlsecho made them, or fills them with
    secrets).  Only mode bits are used, never C{os.access}, so the check holds
    for root, who may read anything.  The message says which C{chmod} fixes it.

    @param what: What the file holds, as the message says it.
    @param group: Whether the file's group may read it.
    @param status: The file's status if already known (from C{os.fstat} on
        the open file); C{path} is C{stat}ed otherwise.
    @raise ConfigurationError: naming C{option}, the file, the mode and the fix.
    """
    if status is None:
        try:
            status = path.stat()
        except OSError as e:
            raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None
    mode = stat.S_IMODE(status.st_mode)
    if group:
        forbidden, who, fix = 0o006, "other users", "o-rwx"
    else:
        forbidden, who, fix = 0o066, "its group or other users", "600"
    refused = mode & forbidden
    if not refused:
        return
    how = "readable" if refused & 0o444 else "writable"
    raise ConfigurationError(
        option,
        f"{what} file is {how} by {who} (mode {mode:04o}); fix it with: chmod {fix} {path}",
        path,
    )


def check_not_writable(path: Path, option: str, what: str, fix: str) -> None:
    """
    Refuse a file or directory that its group or other users may write (and
    so replace what tlsecho trusts), in the words of L{check_private_file}.

    @param fix: The mode to suggest, such as C{"644"} or C{"700"}.
    @raise ConfigurationError: naming C{option}, the path, the mode and the fix.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as e:
        raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None
    if mode & 0o022:
        raise ConfigurationError(
            option,
            f"{what} is writable by its group or other users (mode {mode:04o}); "
            f"fix it with: chmod {fix} {path}",
            path,
        )


def check_keylog_file(
    path: Path, option: str, status: os.stat_result | None = None
) -> None:
    """
    Refuse a key log that exists and is not the user's own private file:
    others may read or write it, or another user owns it (and so can read
    it).  A key log that does not exist yet passes: it is made mode 0600.

    @param status: The status of the open file (from C{os.fstat}), checked
        instead of C{path}'s.
    @raise ConfigurationError: naming C{option}, the file and the fix.
    """
    if status is None:
        try:
            status = path.stat()
        except FileNotFoundError:
            return
        except OSError as e:
            raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None
    if stat.S_ISDIR(status.st_mode):
        raise ConfigurationError(option, "is a directory, not a file", path)
    if status.st_uid != os.geteuid():
        raise ConfigurationError(
            option,
            f"key log file belongs to another user (uid {status.st_uid}), who can "
            "read it; remove it or choose a file of your own",
            path,
        )
    check_private_file(path, option, "key log", group=False, status=status)
