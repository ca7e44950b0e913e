"""Helpers shared by the cred tests: run a checker or portal once, make cheap hashes."""

from __future__ import annotations

import asyncio
from typing import Any

from dropins.cred import UnauthorizedLogin, UsernamePassword


def avatar_id(checker: Any, username: str, password: str) -> Any:
    """The avatar id ``checker`` gives, or None when it refuses the login."""

    async def attempt() -> Any:
        try:
            return await checker.request_avatar_id(UsernamePassword(username, password))
        except UnauthorizedLogin:
            return None

    return asyncio.run(attempt())


def cheap_argon2(password: str) -> str:
    """An argon2id hash with tiny parameters (the format is what matters in tests)."""
    import argon2

    return argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)


def cheap_bcrypt(password: str) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def cheap_scrypt(password: str, monkeypatch: Any) -> str:
    from dropins.cred import hashing

    monkeypatch.setattr(hashing, "SCRYPT_LOG2_N", 4)
    return hashing.hash_password(password, "scrypt")
