"""Switching to an unprivileged user and group once the privileged start (binding) is done.

Names are resolved before anything starts (``resolve_user``/``resolve_group``) so that a typo is
a usage error at once, not a failure after the ports are bound.  A numeric ``--uid`` without
a passwd entry needs ``--gid``: the user alone would keep root's groups.  ``drop_privileges``
sets the supplementary groups first, then the group, then the user: in the other order the
process would no longer be allowed to change its groups.  ``pwd`` and ``grp`` are POSIX-only
and imported here lazily.
"""

from __future__ import annotations

import os

from dropins.runner.errors import RunnerError, UsageError


class Identity:
    """The user and group to switch to (None: keep the current one).

    A plain class, not a dataclass: importing dataclasses pulls in inspect, ~7 ms of every start.
    """

    __slots__ = ("gid", "uid", "user_name")

    def __init__(self, uid: int | None = None, gid: int | None = None,
                 user_name: str | None = None) -> None:
        self.uid = uid
        self.gid = gid
        self.user_name = user_name

    def __repr__(self) -> str:
        return f"Identity(uid={self.uid!r}, gid={self.gid!r}, user_name={self.user_name!r})"


def resolve_user(text: str) -> tuple[int, str | None, int | None]:
    """``(uid, user name, primary gid)`` for a user name or numeric id."""
    import pwd

    try:
        entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except (KeyError, OverflowError):
        if text.isdigit():
            return int(text), None, None
        raise UsageError(f"unknown user {text!r} for --uid: give an existing user name or a "
                         "numeric id")
    return entry.pw_uid, entry.pw_name, entry.pw_gid


def resolve_group(text: str) -> int:
    """The gid for a group name or numeric id."""
    import grp

    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise UsageError(f"unknown group {text!r} for --gid: give an existing group name or a "
                         "numeric id")


def resolve_identity(uid: str | int | None, gid: str | int | None) -> Identity:
    """Resolve ``--uid``/``--gid`` (names or ids); ``--uid`` alone also picks the user's group."""
    if uid is None and gid is None:
        return Identity()
    user_id = user_name = primary_gid = None
    if uid is not None:
        user_id, user_name, primary_gid = resolve_user(str(uid))
    group_id = resolve_group(str(gid)) if gid is not None else primary_gid
    if user_id is not None and group_id is None:
        # Switching the user alone would keep root's group 0 and supplementary groups.
        raise UsageError(f"--uid {uid} has no passwd entry, so its group is unknown: give "
                         "--gid GROUP as well")
    return Identity(user_id, group_id, user_name)


def drop_privileges(identity: Identity) -> None:
    """Become ``identity``; raise ``RunnerError`` naming what was refused."""
    getuid = os.getuid  # type: ignore[attr-defined,unused-ignore]
    if identity.uid is not None and identity.gid is None and getuid() == 0:
        raise UsageError(f"--uid {identity.uid}: its group is unknown; give --gid GROUP as well")
    if identity.gid is not None:
        try:
            if getuid() == 0:  # only root has supplementary groups worth replacing
                if identity.user_name is not None:
                    os.initgroups(identity.user_name, identity.gid)  # type: ignore[attr-defined,unused-ignore]
                else:
                    os.setgroups([identity.gid])  # type: ignore[attr-defined,unused-ignore]
            if identity.gid != os.getgid():  # type: ignore[attr-defined,unused-ignore]
                os.setgid(identity.gid)  # type: ignore[attr-defined,unused-ignore]
        except PermissionError:
            raise RunnerError(f"cannot switch to group {identity.gid}: permission denied "
                              "(start as root, or leave out --gid)")
    if identity.uid is not None and identity.uid != getuid():
        try:
            os.setuid(identity.uid)  # type: ignore[attr-defined,unused-ignore]
        except PermissionError:
            raise RunnerError(f"cannot switch to user {identity.uid}: permission denied "
                              "(start as root, or leave out --uid)")
