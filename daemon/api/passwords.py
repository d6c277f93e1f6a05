"""Password hashes: argon2id (argon2-cffi), with parameters a Raspberry Pi answers a sign-in with in well under 1 s.

OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's default (64 MiB, 3 passes, 4
lanes): the box has 1-4 GB of RAM and 4 slow cores shared with the daemon. A stored hash names its own
parameters, so raising them later keeps old hashes valid."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
USERNAME = re.compile(r"^[^\s:/\\]{1,64}$")  # no spaces, no separators; Chinese names are fine
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(pw_hash: str, password: str) -> bool:
    """True if `password` matches; a damaged hash is a mismatch, never an exception."""
    try:
        return HASHER.verify(pw_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if password != password.strip():
        return "the password starts or ends with a space"
    return None
