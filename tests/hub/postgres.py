"""A throwaway PostgreSQL 15 cluster (Debian `postgresql`) for the hub's tests and its benchmark.

initdb refuses to run as root (CI runs as root), so as root the cluster belongs to `nobody` and its commands run
through `runuser -u nobody`; as anyone else they run as that user. It lives in a temp folder outside pytest's own
(that one is mode 0700 to its owner), with fsync off unless asked
(the tests kill hub workers, never PostgreSQL; the benchmark keeps fsync on).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import free_port

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

    def start(self, fsync: bool = False) -> None:
        data = self.root / "data"
        self.run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                 "-E", "UTF8", "--locale=C.UTF-8")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=50"
        opts += "" if fsync else " -c fsync=off"
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, db: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"
