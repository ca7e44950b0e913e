"""Password hashes: recognise, verify and create them.

Stored passwords are strings in one of these formats:

``$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>``
    Argon2 (argon2id, argon2i or argon2d), verified with argon2-cffi.  What ``dropins passwd``
    writes when argon2-cffi is installed (``pip install 'dropins[auth]'``).
``$2b$12$<salt+hash>`` (also ``$2a$`` and ``$2y$``)
    bcrypt, verified with the bcrypt package; ``htpasswd -B`` writes ``$2y$``.  As in every
    bcrypt implementation only the first 72 bytes of a password count.
``$scrypt$ln=16,r=8,p=1$<salt>$<hash>``
    scrypt from the standard library (``hashlib.scrypt``): N = 2**ln, block size r, parallelism
    p; salt and a 32-byte hash in standard base64 without padding (as in the PHC string
    format).  Needs no third-party package, so it is the fallback of ``dropins passwd``.
anything that does not start with ``$``
    a plain password, compared in constant time.  Accepted so that a quick test setup works;
    the password file checker warns about it.

Other ``$id$`` formats (MD5-crypt ``$apr1$``, SHA-crypt ``$5$``/``$6$``, ...) are refused with
``UnsupportedHash``: they are weak or need libraries dropins does not depend on.

Verification can take a tenth of a second by design; call it off the event loop
(``asyncio.to_thread``).  The hashing libraries are imported only when a hash of theirs is met.
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import re
from typing import Any

__all__ = [
    "MissingHashLibrary",
    "UnsupportedHash",
    "default_scheme",
    "dummy_hash",
    "estimated_cost",
    "hash_parameters",
    "hash_password",
    "identify",
    "verify_password",
]

AUTH_EXTRA_HINT = "pip install 'dropins[auth]'"

#: scrypt parameters written by ``hash_password``: 2**16 * 8 * 128 bytes = 64 MiB, ~0.2 s.
SCRYPT_LOG2_N = 16
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
SCRYPT_HASH_BYTES = 32
#: Limits on parameters read from a file, so that a typo cannot ask for gigabytes of memory.
_SCRYPT_MAX_LOG2_N = 20
_SCRYPT_MAX_R = 32
_SCRYPT_MAX_P = 16

#: bcrypt considers only this many bytes of a password (newer bcrypt packages raise instead).
BCRYPT_MAX_BYTES = 72

_SCRYPT_PATTERN = re.compile(
    r"\$scrypt\$ln=(?P<ln>\d+),r=(?P<r>\d+),p=(?P<p>\d+)\$(?P<salt>[A-Za-z0-9+/]+)"
    r"\$(?P<hash>[A-Za-z0-9+/]+)")
_BCRYPT_PATTERN = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_ARGON2_PATTERN = re.compile(
    r"\$argon2(id|i|d)\$(v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


class UnsupportedHash(ValueError):
    """A stored password in a format dropins does not verify.  The message names the format
    (its ``$id$`` prefix), never the hash itself."""


class MissingHashLibrary(RuntimeError):
    """A hash needs a package that is not installed; the message names the extra to install."""


def identify(stored: str) -> str:
    """Return the scheme of a stored password: 'argon2', 'bcrypt', 'scrypt' or 'plain'.

    Raise UnsupportedHash for another ``$id$`` format or a malformed hash of a known one.
    """
    if not stored.startswith("$"):
        return "plain"
    if stored.startswith("$argon2"):
        if not _ARGON2_PATTERN.fullmatch(stored):
            raise UnsupportedHash("malformed argon2 hash")
        return "argon2"
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        if not _BCRYPT_PATTERN.fullmatch(stored):
            raise UnsupportedHash("malformed bcrypt hash")
        return "bcrypt"
    if stored.startswith("$scrypt$"):
        _parse_scrypt(stored)
        return "scrypt"
    prefix = stored[: stored.find("$", 1) + 1] if stored.find("$", 1) > 0 else "$"
    names = {"$apr1$": "Apache MD5 ($apr1$)", "$1$": "MD5-crypt ($1$)",
             "$5$": "SHA256-crypt ($5$)", "$6$": "SHA512-crypt ($6$)"}
    # Only a known scheme is named: anything else may be a plain password that starts with "$",
    # and no part of a password may reach an error message or a log.
    name = names.get(prefix, "of an unknown '$' scheme")
    raise UnsupportedHash(f"unsupported hash format {name}; supported: argon2, bcrypt, scrypt")


def library_for(scheme: str) -> str | None:
    """The module a scheme needs, or None for the standard library."""
    return {"argon2": "argon2", "bcrypt": "bcrypt"}.get(scheme)


def require_library(scheme: str) -> Any:
    """Import and return the library ``scheme`` needs; raise MissingHashLibrary if absent."""
    module = library_for(scheme)
    if module is None:
        return None
    try:
        return __import__(module)
    except ImportError:
        package = "argon2-cffi" if module == "argon2" else module
        raise MissingHashLibrary(
            f"{scheme} password hashes need the {package} package: {AUTH_EXTRA_HINT}") from None


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a hash in a supported format, or plain).

    Plain passwords are compared in constant time.  Raises UnsupportedHash for a format dropins
    cannot verify and MissingHashLibrary when its package is missing; a wrong password is just
    False.
    """
    scheme = identify(stored)
    secret = password.encode("utf-8")
    if scheme == "plain":
        return hmac.compare_digest(secret, stored.encode("utf-8"))
    if scheme == "scrypt":
        return _verify_scrypt(secret, stored)
    library = require_library(scheme)
    if scheme == "bcrypt":
        try:
            return bool(library.checkpw(secret[:BCRYPT_MAX_BYTES], stored.encode("ascii")))
        except ValueError:
            raise UnsupportedHash("malformed bcrypt hash") from None
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(library.PasswordHasher().verify(stored, secret))
    except VerificationError:
        return False
    except InvalidHashError:
        raise UnsupportedHash("malformed argon2 hash") from None


def hash_parameters(stored: str) -> str:
    """What sets the cost of verifying ``stored``: the hash without its salt and digest
    (``$argon2id$v=19$m=65536,t=3,p=4``, ``$2b$12``, ``$scrypt$ln=16,r=8,p=1``; ``plain``)."""
    scheme = identify(stored)
    if scheme == "plain":
        return "plain"
    if scheme == "bcrypt":
        return stored[:6]
    return stored.rsplit("$", 2)[0]


#: Rough seconds per unit of work on a 2020s x86 core: enough to tell which of two stored
#: passwords of different schemes costs more to verify, not to predict how long it takes.
_SECONDS_PER_BCRYPT_ROUND = 60e-6
_SECONDS_PER_ARGON2_KIB_PASS = 1.1e-6
_SECONDS_PER_SCRYPT_BLOCK = 0.47e-6


def estimated_cost(stored: str) -> float:
    """About how many seconds verifying a password against ``stored`` takes (0 for plain)."""
    parameters = hash_parameters(stored)
    scheme = identify(stored)
    if scheme == "bcrypt":
        return float(2 ** int(parameters[4:6]) * _SECONDS_PER_BCRYPT_ROUND)
    if scheme == "argon2":
        fields = dict(item.split("=") for item in parameters.rsplit("$", 1)[1].split(","))
        return int(fields["m"]) * int(fields["t"]) * _SECONDS_PER_ARGON2_KIB_PASS
    if scheme == "scrypt":
        log2_n, r, p, _, _ = _parse_scrypt(stored)
        return float(2 ** log2_n * r * p * _SECONDS_PER_SCRYPT_BLOCK)
    return 0.0


def dummy_hash(stored: str) -> str:
    """A hash of a random password with the scheme and parameters of ``stored``: verifying a
    password against it costs the same, and no password matches it.  Made once per set of
    parameters (it costs one hashing), so call it off the event loop."""
    digest = stored.rsplit("$", 1)[-1] if stored.startswith("$") else ""
    return _dummy_for(hash_parameters(stored), digest)


@functools.lru_cache(maxsize=32)
def _dummy_for(parameters: str, digest: str) -> str:
    secret = os.urandom(24).hex()
    if parameters == "plain":
        return secret
    if parameters.startswith("$2"):
        library = require_library("bcrypt")
        salt = library.gensalt(int(parameters[4:6]), prefix=b"2b")
        return str(library.hashpw(secret.encode("ascii"), salt).decode("ascii"))
    if parameters.startswith("$scrypt$"):
        log2_n, r, p, _, _ = _parse_scrypt(f"{parameters}$AAAA$AAAA")
        salt = os.urandom(SCRYPT_SALT_BYTES)
        length = len(_b64decode(digest))
        hashed = _scrypt(secret.encode("ascii"), salt, log2_n, r, p, length)
        return f"{parameters}${_b64encode(salt)}${_b64encode(hashed)}"
    library = require_library("argon2")
    from argon2 import extract_parameters

    hasher = library.PasswordHasher.from_parameters(
        extract_parameters(f"{parameters}$AAAAAAAAAAAAAAAAAAAAAA${digest}"))
    return str(hasher.hash(secret))


def default_scheme() -> str:
    """'argon2' when argon2-cffi is installed, else 'scrypt' (standard library)."""
    try:
        import argon2  # noqa: F401
    except ImportError:
        return "scrypt"
    return "argon2"


def hash_password(password: str, scheme: str | None = None) -> str:
    """Hash ``password`` with ``scheme`` ('argon2', 'bcrypt' or 'scrypt'; default: the best
    available) and a fresh random salt."""
    scheme = scheme or default_scheme()
    secret = password.encode("utf-8")
    if scheme == "scrypt":
        salt = os.urandom(SCRYPT_SALT_BYTES)
        digest = _scrypt(secret, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        return (f"$scrypt$ln={SCRYPT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}"
                f"${_b64encode(salt)}${_b64encode(digest)}")
    if scheme not in ("argon2", "bcrypt"):
        raise ValueError(f"unknown hash scheme {scheme!r}; choose argon2, bcrypt or scrypt")
    library = require_library(scheme)
    if scheme == "bcrypt":
        if len(secret) > BCRYPT_MAX_BYTES:
            raise ValueError(f"bcrypt uses only the first {BCRYPT_MAX_BYTES} bytes of a password;"
                             " choose argon2 or scrypt for longer ones")
        hashed: bytes = library.hashpw(secret, library.gensalt())
        return hashed.decode("ascii")
    return str(library.PasswordHasher().hash(secret))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _parse_scrypt(stored: str) -> tuple[int, int, int, bytes, bytes]:
    match = _SCRYPT_PATTERN.fullmatch(stored)
    if match is None:
        raise UnsupportedHash("malformed scrypt hash; expected $scrypt$ln=N,r=R,p=P$SALT$HASH")
    log2_n, r, p = int(match["ln"]), int(match["r"]), int(match["p"])
    if not (1 <= log2_n <= _SCRYPT_MAX_LOG2_N and 1 <= r <= _SCRYPT_MAX_R
            and 1 <= p <= _SCRYPT_MAX_P):
        raise UnsupportedHash(f"scrypt parameters out of range (ln<={_SCRYPT_MAX_LOG2_N},"
                              f" r<={_SCRYPT_MAX_R}, p<={_SCRYPT_MAX_P})")
    try:
        salt, digest = _b64decode(match["salt"]), _b64decode(match["hash"])
    except ValueError:
        raise UnsupportedHash("malformed scrypt hash: bad base64") from None
    if not digest:
        raise UnsupportedHash("malformed scrypt hash: empty hash")
    return log2_n, r, p, salt, digest


def _scrypt(secret: bytes, salt: bytes, log2_n: int, r: int, p: int,
            length: int = SCRYPT_HASH_BYTES) -> bytes:
    import hashlib

    memory = 128 * r * (2 ** log2_n) * (p + 1) + 1024 * 1024
    return hashlib.scrypt(secret, salt=salt, n=2 ** log2_n, r=r, p=p, maxmem=memory,
                          dklen=length)


def _verify_scrypt(secret: bytes, stored: str) -> bool:
    log2_n, r, p, salt, expected = _parse_scrypt(stored)
    return hmac.compare_digest(_scrypt(secret, salt, log2_n, r, p, len(expected)), expected)
