"""Sign-in: password checks with lock-out, and server-side sessions with idle and absolute expiry.

Answers do not tell a wrong password from an unknown name: an unknown name is checked against a dummy hash
(the same argon2 work) and its failures are counted (in memory) and locked like a user's. Sessions are
random 256-bit tokens; the journal keeps only their SHA-256, and `last_seen` is written at most once a minute
per session so that page polling does not wear the SD card."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from daemon.api.passwords import hash_password, verify
from daemon.config.schema import SignInConfig
from daemon.storage.users import SessionRow, Users

TOUCH_EVERY = 60.0  # seconds between writes of a session's last_seen
_UNKNOWN_KEPT = 1000  # names that are not users whose failures are remembered


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of a sign-in: `ok` with a session, `wrong`, or `locked` for `retry_after` seconds."""

    outcome: str
    username: str = ""
    role: str = ""
    token: str = ""
    csrf: str = ""
    retry_after: int = 0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignIn:
    """The sign-in rules over the journal's users and sessions; blocking (argon2, SQLite): call in a thread."""

    def __init__(self, users: Users, cfg: SignInConfig, now: Callable[[], float]) -> None:
        self._users, self._cfg, self._now = users, cfg, now
        self._dummy: str | None = None
        self._unknown: dict[str, tuple[int, float, float | None]] = {}  # name -> failed, since, locked_until
        self._lock = threading.Lock()  # one check at a time: counts stay exact, and argon2's RAM is paid once

    def attempt(self, username: str, password: str) -> Attempt:
        with self._lock:
            return self._attempt(username, password)

    def _attempt(self, username: str, password: str) -> Attempt:
        now = self._now()
        user = self._users.get(username)
        failed, since, locked = ((user.failed, user.failed_since, user.locked_until) if user
                                 else self._unknown.get(username, (0, None, None)))
        if locked is not None and locked > now:
            return Attempt("locked", retry_after=max(1, math.ceil(locked - now)))
        if user is None:
            self._dummy = self._dummy or hash_password(secrets.token_urlsafe(16))
            verify(self._dummy, password)
        elif verify(user.hash, password):
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            self._users.signed_in(user.username, token_hash(token), csrf, now)
            return Attempt("ok", user.username, user.role, token, csrf)
        if since is None or now - since > self._cfg.failure_window or locked is not None:
            failed, since = 0, now
        failed += 1
        until = now + self._cfg.lockout if failed >= self._cfg.max_failures else None
        if user is not None:
            self._users.failed(user.username, failed, since, until, now)
        else:
            if len(self._unknown) >= _UNKNOWN_KEPT:
                self._unknown.pop(next(iter(self._unknown)))
            self._unknown[username] = (failed, since, until)
        return Attempt("wrong")

    def resolve(self, token: str) -> SessionRow | None:
        """The live session of a cookie, or None; an expired one is ended on the way."""
        th = token_hash(token)
        s = self._users.session(th)
        if s is None:
            return None
        now = self._now()
        if now - s.last_seen >= self._cfg.session_idle or now - s.created >= self._cfg.session_max:
            why = "idle" if now - s.created < self._cfg.session_max else "expired"
            self._users.end_session(th, now, why)
            return None
        if now - s.last_seen >= TOUCH_EVERY:
            self._users.touch(th, now)
        return s

    def sign_out(self, token: str) -> None:
        self._users.end_session(token_hash(token), self._now(), "signed_out")
