"""The hub's real peers: one PostgreSQL 15 (Debian `postgresql`) per session, a database per test, and Mosquitto.

initdb refuses to run as root (CI runs as root), so as root the cluster belongs to `nobody` and its commands run
through `runuser -u nobody`; as anyone else they run as that user. The cluster lives in a temp folder outside
pytest's own (that one is mode 0700 to its owner), with fsync off: the tests kill hub workers, never PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.peers import Mosquitto

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Postgres:
    """A throwaway cluster on a free loopback port, trust auth for user `postgres` on 127.0.0.1 only."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 not installed: run `make system-deps` (Debian package postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="cc-hub-pg-"))
        self.port = free_port()
        self.as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "nobody")

    def run(self, *args: str) -> None:
        out = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if out.returncode:
            log = self.root / "log"
            raise AssertionError(f"{args[0]} failed: {out.stdout}{out.stderr}"
                                 + (log.read_text(errors="replace")[-2000:] if log.exists() else ""))

    def start(self) -> None:
        data = self.root / "data"
        self.run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                 "-E", "UTF8", "--locale=C.UTF-8")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=50"
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, db: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hub_db(postgres: Postgres) -> str:
    """The session's hub database with its tables; `dsn` empties it for each test."""
    import psycopg

    from hub import store

    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE hub")
    with psycopg.connect(postgres.dsn("hub")) as conn:
        store.create(conn)
    return postgres.dsn("hub")


@pytest.fixture
def dsn(hub_db: str) -> str:
    """The hub database, emptied (a CREATE DATABASE per test costs more than a second; TRUNCATE a few ms)."""
    import psycopg

    with psycopg.connect(hub_db) as conn:
        conn.execute("TRUNCATE centers, rooms, event_lots, events, alarm_changes, alarms, rejected RESTART IDENTITY")
    return hub_db


@pytest.fixture
def pg(dsn: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        yield conn


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One Mosquitto 2 (MQTT 5, shared subscriptions) for the session; each test uses its own topic root."""
    server = Mosquitto(tmp_path_factory.mktemp("hub-mosquitto"))
    server.start()
    yield server
    server.stop()
