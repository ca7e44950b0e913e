"""The SSH host key: an ed25519 key made on first start, kept at ``--host-key``, reused after.

A console must never ship with a key everyone has (twisted#8229), and a key that changes at
every start would teach users to ignore ssh's warning about it.  So the first start generates
one and writes it with mode 0600 (and its public half beside it, ``PATH.pub``, for pinning in
``known_hosts``); later starts read it back.  A key file that others may read or write is
refused: its secrecy is the only thing that proves the server is this one.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

__all__ = ["HostKeyError", "default_host_key_path", "load_host_key"]

log = logging.getLogger("dropins.console")


class HostKeyError(Exception):
    """The host key cannot be used; the message says why and what to do."""


def default_host_key_path() -> str:
    """Where the key is kept without ``--host-key``: the user's state folder."""
    import platformdirs

    return os.path.join(platformdirs.user_state_dir("dropins"), "console_ssh_host_ed25519_key")


def load_host_key(path: str) -> Any:
    """The private key at ``path``, generated there first if the file does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return _create(path)
    except OSError as error:
        raise HostKeyError(f"cannot read --host-key {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise HostKeyError(f"--host-key {path} is not a regular file")
    if info.st_mode & 0o077:
        raise HostKeyError(f"--host-key {path} is open to other users (mode "
                           f"{stat.S_IMODE(info.st_mode):04o}); make it private: chmod 600 "
                           f"{path}")
    try:
        with open(path, "rb") as file:
            data = file.read(1 << 16)
    except OSError as error:
        raise HostKeyError(f"cannot read --host-key {path}: {error.strerror or error}") from None
    import asyncssh

    try:
        return asyncssh.import_private_key(data)
    except (asyncssh.KeyImportError, ValueError) as error:
        raise HostKeyError(f"--host-key {path} is not an SSH private key ({error}); move it "
                           "away to have a new one generated") from None


def _create(path: str) -> Any:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519", comment="dropins console host key")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use that one
        return load_host_key(path)
    except OSError as error:
        raise HostKeyError(f"cannot create --host-key {path}: {error.strerror or error}") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.export_private_key("openssh"))
        file.flush()
        os.fsync(file.fileno())
    try:
        with open(path + ".pub", "wb") as file:
            file.write(key.export_public_key("openssh"))
    except OSError as error:  # only a convenience
        log.warning("console: cannot write %s.pub: %s", path, error.strerror or error)
    log.info("console: generated SSH host key %s (%s)", path, key.get_fingerprint())
    return key
