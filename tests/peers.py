"""Real servers for integration tests: InfluxDB 1.6.7 and VictoriaMetrics on free loopback ports.

Each peer runs from a temp folder with a generated config, is polled until it answers (with a
deadline), and is stopped by its own pid. `stop()` + `start()` keeps the data and the port, for
"server went away mid-run" tests.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3

from tests.conftest import free_port

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))


def wait_until(check: Callable[[], Any], deadline_s: float, what: str, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after the deadline."""
    end = time.monotonic() + deadline_s
    last_exc: Exception | None = None
    while time.monotonic() < end:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - not up yet, whatever the probe raised
            last_exc = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what}" + (f" ({last_exc})" if last_exc else ""))


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.02) -> Any:
    """Await `check()` (plain or async) until it returns something truthy; fail naming `what` after `timeout` s.

    The one polling helper of the async tests: a bounded wait for a state, never a timing assertion."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


class _Peer:
    binary = ""
    name = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if shutil.which(self.binary) is None:
            raise RuntimeError(f"{self.binary} not installed: run `make system-deps`")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        log = (self.root / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = (self.root / f"{self.name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")
            return self.ready()

        try:
            wait_until(up, 30, f"{self.name} on port {self.port}")
        except RuntimeError as exc:
            raise AssertionError(str(exc)) from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None


class InfluxD(_Peer):
    """InfluxDB 1.x (`influxd`), with meta/data/wal under `root` and HTTP on a free loopback port."""

    binary = "influxd"
    name = "influxd"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.rpc_port = free_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(
            f"""reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{root / 'meta'}"
[data]
  dir = "{root / 'data'}"
  wal-dir = "{root / 'wal'}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[logging]
  level = "warn"
""",
            encoding="utf-8",
        )

    def args(self) -> list[str]:
        return [self.binary, "-config", str(self.config)]

    def ready(self) -> bool:
        return _http.request("GET", f"{self.url}/ping").status == 204

    def query(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """InfluxQL; returns the `series` of the first result (epoch ms timestamps)."""
        params = {"q": q, "epoch": "ms", **({"db": db} if db else {})}
        resp = _http.request("POST", f"{self.url}/query?{urlencode(params)}")
        body = json.loads(resp.data)
        assert resp.status == 200, body
        result = body["results"][0]
        assert "error" not in result, result["error"]
        return list(result.get("series", []))

    def write(self, db: str, lines: str) -> None:
        """Line protocol written behind the daemon's back (ms timestamps)."""
        resp = _http.request("POST", f"{self.url}/write?{urlencode({'db': db, 'precision': 'ms'})}",
                             body=lines.encode())
        assert resp.status == 204, resp.data

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def points(self, db: str, measurement: str) -> list[dict[str, Any]]:
        """Every point of `measurement` as a dict of column -> value (tags included)."""
        out = []
        for s in self.query(f'SELECT * FROM "{measurement}"', db):  # noqa: S608 - the measurement is the test's own name
            cols = s["columns"]
            out += [dict(zip(cols, row, strict=True)) for row in s["values"]]
        return out


class VictoriaMetrics(_Peer):
    """VictoriaMetrics single node; `dedup` makes it keep one sample per series and timestamp, like InfluxDB."""

    binary = "victoria-metrics"
    name = "victoria-metrics"

    def __init__(self, root: Path, dedup: bool = True) -> None:
        super().__init__(root)
        self.dedup = dedup

    def args(self) -> list[str]:
        args = [self.binary, f"-storageDataPath={self.root / 'vm-data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y", "-loggerLevel=WARN"]  # test data is stamped in the past
        return args + (["-dedup.minScrapeInterval=1ms"] if self.dedup else [])

    def ready(self) -> bool:
        return _http.request("GET", f"{self.url}/health").status == 200

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, Any]]:
        """Every stored series with its samples (after a flush, so fresh writes are visible)."""
        _http.request("GET", f"{self.url}/internal/force_flush")
        resp = _http.request("POST", f"{self.url}/api/v1/export", fields={"match[]": match, "start": "0"},
                             encode_multipart=False)
        assert resp.status == 200, resp.data
        return [json.loads(line) for line in resp.data.decode().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD]:
    """One InfluxDB 1.6.7 for the session; tests use their own database in it."""
    server = InfluxD(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxd: InfluxD, request: pytest.FixtureRequest) -> str:
    """A fresh database named after the test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    influxd.query(f'DROP DATABASE "{name}"')
    influxd.create_database(name)
    return name


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """One VictoriaMetrics for the session, deduplicating like InfluxDB; tests use their own `site` tag."""
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


class Mosquitto(_Peer):
    """Mosquitto on a free loopback port, anonymous, with persistence off."""

    binary = "mosquitto"
    name = "mosquitto"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.config = root / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
                               encoding="utf-8")

    def args(self) -> list[str]:
        return [shutil.which(self.binary) or self.binary, "-c", str(self.config)]

    def ready(self) -> bool:
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()
