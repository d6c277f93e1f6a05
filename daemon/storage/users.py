"""People who sign in (`users`) and their server-side sessions (`sessions`); every change is audited.

Only hashes are stored: the password's argon2id hash (made by the caller) and the SHA-256 of a session
cookie. Each change of a user writes its audit row in the same transaction, with who made it."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.storage.audit import AuditLog
from daemon.storage.db import Database, Tx

_USER_COLS = "username, role, hash, created, changed, failed, failed_since, locked_until"


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    role: str
    hash: str
    created: float
    changed: float
    failed: int
    failed_since: float | None
    locked_until: float | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: str
    username: str
    role: str
    csrf: str
    created: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class By:
    """Who makes a change, for the audit log (an installer at the console, a manager, the daemon)."""

    name: str
    role: str


class Users:
    """The `users` and `sessions` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, username: str) -> UserRow | None:
        row = self._db.one(f"SELECT {_USER_COLS} FROM users WHERE username = ?", (username,))
        return UserRow(*row) if row else None

    def all(self) -> list[UserRow]:
        return [UserRow(*r) for r in self._db.read(f"SELECT {_USER_COLS} FROM users ORDER BY username")]

    def add(self, username: str, role: str, pw_hash: str, now: float, by: By) -> bool:
        """False if the name is taken."""
        with self._db.transaction() as tx:
            if tx.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                return False
            tx.execute("INSERT INTO users (username, role, hash, created, changed) VALUES (?,?,?,?,?)",
                       (username, role, pw_hash, now, now))
            AuditLog.add(tx, now, by.name, by.role, "user.add", f"user:{username}", {"role": role})
        return True

    def set_password(self, username: str, pw_hash: str, now: float, by: By) -> int | None:
        """The new hash, the lock lifted and every session of the user ended: the number ended (None: no user)."""
        with self._db.transaction() as tx:
            cur = tx.execute("UPDATE users SET hash = ?, changed = ?, failed = 0, failed_since = NULL, "
                             "locked_until = NULL WHERE username = ?", (pw_hash, now, username))
            if cur.rowcount == 0:
                return None
            ended = tx.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount
            AuditLog.add(tx, now, by.name, by.role, "user.passwd", f"user:{username}", {"sessions_ended": ended})
        return int(ended)

    def remove(self, username: str, now: float, by: By) -> bool:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE username = ?", (username,))
            if tx.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
                return False
            AuditLog.add(tx, now, by.name, by.role, "user.remove", f"user:{username}", {})
        return True

    def unlock(self, username: str, now: float, by: By) -> bool:
        with self._db.transaction() as tx:
            cur = tx.execute("UPDATE users SET failed = 0, failed_since = NULL, locked_until = NULL, changed = ? "
                             "WHERE username = ?", (now, username))
            if cur.rowcount == 0:
                return False
            AuditLog.add(tx, now, by.name, by.role, "user.unlock", f"user:{username}", {})
        return True

    def failed(self, username: str, failed: int, since: float, locked_until: float | None, now: float) -> None:
        """A wrong password: the window's count, and the lock when it reached the limit (audited then)."""
        with self._db.transaction() as tx:
            tx.execute("UPDATE users SET failed = ?, failed_since = ?, locked_until = ? WHERE username = ?",
                       (failed, since, locked_until, username))
            if locked_until is not None:
                AuditLog.add(tx, now, "coldchain", "system", "user.locked", f"user:{username}",
                             {"failures": failed, "until": locked_until})

    def signed_in(self, username: str, token_hash: str, csrf: str, now: float) -> None:
        """A session starts; the failure count is cleared."""
        with self._db.transaction() as tx:
            tx.execute("UPDATE users SET failed = 0, failed_since = NULL, locked_until = NULL WHERE username = ?",
                       (username,))
            tx.execute("INSERT INTO sessions (token_hash, username, csrf, created, last_seen) VALUES (?,?,?,?,?)",
                       (token_hash, username, csrf, now, now))
            AuditLog.add(tx, now, username, self._role(tx, username), "session.start", f"user:{username}", {})

    @staticmethod
    def _role(tx: Tx, username: str) -> str:
        row = tx.execute("SELECT role FROM users WHERE username = ?", (username,)).fetchone()
        return str(row[0]) if row else ""

    def session(self, token_hash: str) -> SessionRow | None:
        row = self._db.one("SELECT s.token_hash, s.username, u.role, s.csrf, s.created, s.last_seen "
                           "FROM sessions s JOIN users u ON u.username = s.username WHERE s.token_hash = ?",
                           (token_hash,))
        return SessionRow(*row) if row else None

    def touch(self, token_hash: str, now: float) -> None:
        with self._db.transaction() as tx:
            tx.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))

    def end_session(self, token_hash: str, now: float, why: str) -> None:
        """Sign-out (`why` = signed_out) or expiry (idle, absolute): deleted, and audited."""
        with self._db.transaction() as tx:
            row = tx.execute("SELECT s.username, u.role FROM sessions s JOIN users u ON u.username = s.username "
                             "WHERE s.token_hash = ?", (token_hash,)).fetchone()
            if row is None:
                return
            tx.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))
            AuditLog.add(tx, now, row[0], row[1], "session.end", f"user:{row[0]}", {"why": why})

    def sessions_of(self, username: str) -> int:
        row = self._db.one("SELECT COUNT(*) FROM sessions WHERE username = ?", (username,))
        return int(row[0]) if row else 0
