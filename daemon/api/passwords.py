"""Password hashes: argon2id (argon2-cffi), with parameters a Raspberry Pi answers a sign-in with in well under 1 s.

OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's default (64 MiB, 3 passes, 4
lanes): the box has 1-4 GB of RAM and 4 slow cores shared with the daemon. A stored hash names its own
parameters, so raising them later keeps old hashes valid.

argon2-cffi is imported at the first hash, not with the API: it and cffi cost ~0.5-1 MB of RSS on a box
where nobody may sign in for days (issue 13)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

USERNAME = re.compile(r"^[^\s:/\\]{1,64}$")  # no spaces, no separators; Chinese names are fine
MIN_PASSWORD = 8


@functools.cache
def hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify(pw_hash: str, password: str) -> bool:
    """True if `password` matches; a damaged hash is a mismatch, never an exception."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return hasher().verify(pw_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if password != password.strip():
        return "the password starts or ends with a space"
    return None
