"""Password hashes: each supported format verifies, others are refused by name."""

from __future__ import annotations

import re
import sys

import pytest

from _cred_helpers import cheap_argon2, cheap_bcrypt, cheap_scrypt
from dropins.cred import UsernamePassword, hash_password, verify_password
from dropins.cred.hashing import MissingHashLibrary, UnsupportedHash, default_scheme, identify


@pytest.mark.parametrize("make", [cheap_argon2, cheap_bcrypt], ids=["argon2", "bcrypt"])
def test_library_hashes_verify_right_and_refuse_wrong(make):
    stored = make("s3cret pässword")
    assert verify_password("s3cret pässword", stored)
    assert not verify_password("s3cret passwörd", stored)
    assert not verify_password("", stored)


def test_scrypt_round_trip_and_format(monkeypatch):
    stored = cheap_scrypt("pässword", monkeypatch)
    assert re.fullmatch(r"\$scrypt\$ln=4,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}", stored)
    assert identify(stored) == "scrypt"
    assert verify_password("pässword", stored)
    assert not verify_password("password", stored)


def test_default_scrypt_parameters_are_strong():
    stored = hash_password("x", "scrypt")
    assert stored.startswith("$scrypt$ln=16,r=8,p=1$")
    assert verify_password("x", stored)


def test_salts_differ_between_hashes(monkeypatch):
    assert cheap_scrypt("same", monkeypatch) != cheap_scrypt("same", monkeypatch)


def test_hash_password_prefers_argon2_when_installed():
    assert default_scheme() == "argon2"
    stored = hash_password("pw")
    assert stored.startswith("$argon2id$")
    assert verify_password("pw", stored)


def test_apache_bcrypt_2y_prefix_verifies():
    stored = cheap_bcrypt("pw").replace("$2b$", "$2y$", 1)
    assert identify(stored) == "bcrypt"
    assert verify_password("pw", stored)


def test_bcrypt_counts_only_72_bytes_like_apache():
    stored = cheap_bcrypt("a" * 72)
    assert verify_password("a" * 72 + "ignored", stored)
    with pytest.raises(ValueError, match="72 bytes"):
        hash_password("a" * 73, "bcrypt")


def test_plain_passwords_compare_exactly_including_non_ascii():
    assert identify("plain pw") == "plain"
    assert verify_password("naïve", "naïve")
    assert not verify_password("naïve", "naive")
    assert not verify_password("pw", "pw ")


@pytest.mark.parametrize("stored, named", [
    ("$apr1$uFrkiCmI$dZ/hJnk5CFk0rzRM/DU200", "Apache MD5"),
    ("$6$salt$hash", "SHA512-crypt"),
    ("$1$salt$hash", "MD5-crypt"),
    ("$pbkdf2$stuff", "unknown '$' scheme"),
    ("$2b$04$tooshort", "malformed bcrypt"),
    ("$argon2id$v=19$garbage", "malformed argon2"),
    ("$scrypt$ln=4,r=8,p=1$!!$??", "malformed scrypt"),
    ("$scrypt$ln=40,r=8,p=1$AAAA$AAAA", "out of range"),
])
def test_unsupported_or_malformed_hashes_are_named(stored, named):
    with pytest.raises(UnsupportedHash) as caught:
        verify_password("pw", stored)
    assert named in str(caught.value)
    assert stored not in str(caught.value)


def test_missing_library_names_the_extra(monkeypatch):
    stored = cheap_bcrypt("pw")
    monkeypatch.setitem(sys.modules, "bcrypt", None)
    with pytest.raises(MissingHashLibrary, match=r"pip install 'dropins\[auth\]'"):
        verify_password("pw", stored)


def test_default_scheme_falls_back_to_scrypt_without_argon2(monkeypatch):
    monkeypatch.setitem(sys.modules, "argon2", None)
    assert default_scheme() == "scrypt"


def test_username_password_hides_the_password():
    credentials = UsernamePassword("alice", "hunter2")
    assert "hunter2" not in repr(credentials)
    assert "alice" in repr(credentials)
    assert credentials.check_password("hunter2")
    assert not credentials.check_password("hunter3")
    with pytest.raises(TypeError):
        UsernamePassword("alice", b"bytes")  # type: ignore[arg-type]


def test_an_unknown_dollar_format_is_not_echoed_in_the_error() -> None:
    # A plain password that happens to start with "$" must not leak through the message.
    from dropins.cred.hashing import UnsupportedHash, identify

    with pytest.raises(UnsupportedHash) as raised:
        identify("$Sup3r$ecretpass")
    assert "Sup3r" not in str(raised.value) and "ecret" not in str(raised.value)
    assert "unknown '$' scheme" in str(raised.value)
