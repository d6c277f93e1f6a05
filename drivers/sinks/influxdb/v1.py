"""`type: influxdb1`: POST /write of InfluxDB 1.x (1.6.7 is what Debian and Raspberry Pi OS install)."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
from collections.abc import Sequence
from importlib import resources
from urllib.parse import urlencode

import urllib3

from daemon.ports.errors import SinkError
from daemon.ports.model import Reading
from daemon.ports.sinks import AlarmEvent, Batch, JournalReader, Sink
from drivers.registry import sink
from drivers.sinks.influxdb.points import encode, encode_events, prepare_lines
from drivers.sinks.influxdb.schema import InfluxDB1Config
from drivers.sinks.influxdb.threads import SinkThreads

SAMPLE_YAML: str = resources.files(__package__).joinpath("sample_influxdb1.yaml").read_text(encoding="utf-8")
"""A commented `sinks:` list item showing every option with its default."""

# 400: the server parsed the body and refused points (syntax, field type conflict, beyond retention);
# 413: the body is too big. Both are about this content: the forwarder splits the batch. Anything else
# (5xx, 401/403, 404 database not found) is a state of the server that an operator or time can fix.
REFUSED = frozenset({400, 413})
# Request bodies are gzipped at this level: 4.6 bytes per reading against 5.6 at level 1 (bench data);
# level 1 saves ~0.2 us of CPU per reading, a 4G link pays for the bytes on every reading, for ever.
GZIP_LEVEL = 5


@sink("influxdb1")
class InfluxDB1Sink(Sink):
    """One urllib3 pool per sink; each batch is one POST, confirmed by HTTP 204. Two batches may be on
    the wire at once, so a link's round trip is not paid per batch: a backlog drained 1.6-1.8 x faster
    through a proxy holding each answer back 80 ms (a 4G round trip). InfluxDB 1.x takes concurrent
    writes; the forwarder still confirms them in journal order."""

    supports_events = True
    max_in_flight = 2

    Config = InfluxDB1Config

    def __init__(self, config: InfluxDB1Config, commodities: dict[str, str]) -> None:
        super().__init__(config, commodities)
        self.cfg = config
        query = {"db": config.database, "precision": "ms"}
        if config.retention_policy:
            query["rp"] = config.retention_policy
        self.write_url = f"{config.url.rstrip('/')}/write?{urlencode(query)}"
        self._http: urllib3.PoolManager | None = None
        self._lock = threading.Lock()
        self._threads = SinkThreads(f"influxdb1-{config.id}", self.max_in_flight + 1)  # + alarm events

    @property
    def source(self) -> str:
        return f"influxdb1:{self.config.id} ({self.cfg.url.rstrip('/')}, db {self.cfg.database})"

    def _pool(self) -> urllib3.PoolManager:
        with self._lock:  # two batches' threads may come here first at once
            if self._http is None:
                tls = self.cfg.tls
                self._http = urllib3.PoolManager(
                    num_pools=1, maxsize=self._threads.workers, retries=False,
                    timeout=urllib3.Timeout(total=self.cfg.timeout),
                    cert_reqs="CERT_REQUIRED" if tls.verify else "CERT_NONE",
                    ca_certs=str(tls.ca_file) if tls.ca_file else None,
                    cert_file=str(tls.cert_file) if tls.cert_file else None,
                    key_file=str(tls.key_file) if tls.key_file else None,
                )
            return self._http

    async def write(self, readings: Sequence[Reading]) -> None:
        await self._threads.call(lambda: self._post(self._body(encode(self.source, readings, self.commodities))))

    async def write_events(self, events: Sequence[AlarmEvent]) -> None:
        await self._threads.call(lambda: self._post(self._body(encode_events(events, self.commodities))))

    def prepare(self, journal: JournalReader, after: int, limit: int) -> Batch | None:
        batch = prepare_lines(self.source, journal, after, limit, self.commodities)
        if batch is None or not isinstance(batch.payload, bytes):
            return batch
        return Batch(batch.after, batch.last, batch.count, self._body(batch.payload))

    async def write_batch(self, batch: Batch) -> None:
        body = batch.payload
        if isinstance(body, SinkError):
            raise body
        assert isinstance(body, bytes)
        await self._threads.call(lambda: self._post(body))

    def _body(self, lines: bytes) -> bytes:
        return gzip.compress(lines, compresslevel=GZIP_LEVEL) if self.cfg.gzip else lines

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        password = self.cfg.secret(self.source)
        if self.cfg.username is not None:
            headers.update(urllib3.make_headers(basic_auth=f"{self.cfg.username}:{password or ''}"))
        if self.cfg.gzip:
            headers["Content-Encoding"] = "gzip"
        try:
            resp = self._pool().request("POST", self.write_url, body=body, headers=headers, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise SinkError(self.source, f"no answer: {_reason(exc)}") from None
        if 200 <= resp.status < 300:
            return
        raise SinkError(self.source, f"HTTP {resp.status}: {_error_text(resp.data)}",
                        retryable=resp.status not in REFUSED)

    async def close(self) -> None:
        self._threads.close()
        if self._http is not None:
            self._http.clear()
            self._http = None


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    """The root cause of a urllib3 failure (MaxRetryError wraps it)."""
    inner = getattr(exc, "reason", None) or exc
    return f"{type(inner).__name__}: {inner}"


def _error_text(data: bytes) -> str:
    """InfluxDB answers `{"error": "..."}`; keep it short for logs and /healthz."""
    text = data.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError, AttributeError):
        text = str(json.loads(text).get("error", text))
    return text[:300] or "(no body)"
