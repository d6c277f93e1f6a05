"""`type: influxdb2`: the v2 write API through influxdb-client (InfluxDB 2.x, 3.x, Cloud, 1.8+ compat).

The client's synchronous WriteApi runs in a thread, one call per batch, so every batch is
confirmed or refused right here; the client's background batching (which retries and drops
on its own) is not used, nor its retries: the forwarder owns both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import urllib3

from daemon.ports.errors import SinkError
from daemon.ports.model import Reading
from daemon.ports.sinks import AlarmEvent, Batch, JournalReader, Sink
from drivers.registry import sink
from drivers.sinks.influxdb.points import PRECISION, encode, encode_events, prepare_lines
from drivers.sinks.influxdb.schema import InfluxDB2Config
from drivers.sinks.influxdb.threads import SinkThreads

if TYPE_CHECKING:  # influxdb_client costs ~25 MB of RSS: imported when a v2 sink first writes
    from influxdb_client.client.exceptions import InfluxDBError
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import WriteApi

SAMPLE_YAML: str = resources.files(__package__).joinpath("sample_influxdb2.yaml").read_text(encoding="utf-8")
"""A commented `sinks:` list item showing every option with its default."""

# 400 bad line protocol / type conflict, 413 body too big, 422 points outside the bucket's retention:
# refusals of this content, which the forwarder isolates. 401/403/404/429/5xx: retry, skip nothing.
REFUSED = frozenset({400, 413, 422})

_IMPORTING = threading.Lock()


def _client_names() -> tuple[type[InfluxDBClient], Any, type[InfluxDBError]]:
    """influxdb-client's InfluxDBClient, SYNCHRONOUS and InfluxDBError, imported at a sink's first write under one
    lock for the process: two sinks whose first writes ran at once in their threads made the package's circular
    imports fail in one of them (ImportError "partially initialized module", no SinkError), which lost the
    hub bench's first POST every run (tests/test_bench_hub_readings.py)."""
    with _IMPORTING:
        from influxdb_client.client.exceptions import InfluxDBError
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
    return InfluxDBClient, SYNCHRONOUS, InfluxDBError


@sink("influxdb2")
class InfluxDB2Sink(Sink):
    """One InfluxDBClient per sink, created on first use and again after a failure. Two batches may be
    on the wire at once (see InfluxDB1Sink); the client's urllib3 pool is thread-safe."""

    supports_events = True
    max_in_flight = 2

    Config = InfluxDB2Config

    def __init__(self, config: InfluxDB2Config, commodities: dict[str, str]) -> None:
        super().__init__(config, commodities)
        self.cfg = config
        self._client: InfluxDBClient | None = None
        self._api: WriteApi | None = None
        self._lock = threading.Lock()
        self._threads = SinkThreads(f"influxdb2-{config.id}", self.max_in_flight + 1)  # + alarm events

    @property
    def source(self) -> str:
        return f"influxdb2:{self.config.id} ({self.cfg.url.rstrip('/')}, bucket {self.cfg.bucket})"

    def _write_api(self) -> WriteApi:
        with self._lock:
            return self._api or self._connect()

    def _connect(self) -> WriteApi:
        client_class, synchronous, _ = _client_names()
        tls = self.cfg.tls
        kwargs: dict[str, Any] = {"verify_ssl": tls.verify, "retries": False}
        for key, path in (("ssl_ca_cert", tls.ca_file), ("cert_file", tls.cert_file), ("cert_key_file", tls.key_file)):
            if path is not None:
                kwargs[key] = str(path)
        self._client = client_class(
            url=self.cfg.url, token=self.cfg.secret(self.source), org=self.cfg.org,
            timeout=int(self.cfg.timeout * 1000), enable_gzip=self.cfg.gzip, **kwargs,
        )
        self._api = self._client.write_api(write_options=synchronous)
        return self._api

    async def write(self, readings: Sequence[Reading]) -> None:
        await self._threads.call(lambda: self._write(encode(self.source, readings, self.commodities)))

    async def write_events(self, events: Sequence[AlarmEvent]) -> None:
        await self._threads.call(lambda: self._write(encode_events(events, self.commodities)))

    def prepare(self, journal: JournalReader, after: int, limit: int) -> Batch | None:
        return prepare_lines(self.source, journal, after, limit, self.commodities)  # the client gzips

    async def write_batch(self, batch: Batch) -> None:
        body = batch.payload
        if isinstance(body, SinkError):
            raise body
        assert isinstance(body, bytes)
        await self._threads.call(lambda: self._write(body))

    def _write(self, body: bytes) -> None:
        *_, influx_error = _client_names()
        try:
            self._write_api().write(bucket=self.cfg.bucket, org=self.cfg.org, record=body,
                                    write_precision=PRECISION)  # type: ignore[arg-type]  # its constants are str
        except influx_error as exc:
            status = getattr(exc, "status", None) or getattr(exc.response, "status", None)
            message = exc.message.decode("utf-8", "replace") if isinstance(exc.message, bytes) else str(exc.message)
            if status not in REFUSED:
                self._reset()  # e.g. a rotated token file: read it again on the next try
            raise SinkError(self.source, f"HTTP {status}: {message.strip()[:300]}",
                            retryable=status not in REFUSED) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            inner = getattr(exc, "reason", None) or exc
            raise SinkError(self.source, f"no answer: {type(inner).__name__}: {inner}") from None

    def _reset(self) -> None:
        with self._lock:
            client, self._client, self._api = self._client, None, None
        if client is not None:
            client.close()  # a batch still on the wire with it fails, and is sent again

    async def close(self) -> None:
        self._threads.close()
        await asyncio.to_thread(self._reset)
