"""A throwaway PostgreSQL cluster and Mosquitto broker on loopback ports, for `coldchain demo --centers` and the tests.

initdb refuses to run as root (CI runs as root), so as root the cluster belongs to `nobody` and its commands run
through `runuser -u nobody`; as anyone else they run as that user. It lives in a temp folder of its own (pytest's
are mode 0700 to their owner), with fsync off unless asked (nothing here kills PostgreSQL; the benchmark keeps
fsync on).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PG_BIN = next((b for b in PG_BINS if (b / "initdb").exists()), Path("/usr/lib/postgresql/15/bin"))
APT_LINE = "sudo apt-get install -y mosquitto postgresql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing() -> list[str]:
    """The Debian packages a local region (demo) needs that are not installed."""
    out = [] if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists() else ["mosquitto"]
    return out + ([] if (PG_BIN / "initdb").exists() else ["postgresql"])


class Postgres:
    """A throwaway cluster on a free loopback port, trust auth for user `postgres` on 127.0.0.1 only."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL not installed: {APT_LINE} (or `make system-deps`)")
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


class Broker:
    """Mosquitto on a free loopback port, anonymous (loopback only), persistence off."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
                               encoding="utf-8")
        self.log = root / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([binary, "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"mosquitto did not start: {self.log.read_text(errors='replace')[-1000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
