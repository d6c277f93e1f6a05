"""One hub worker: an MQTT 5 client in the broker's shared subscription, acknowledging messages only after commit.

Several workers with the same `group` split the boxes' stream (`$share/<group>/...`): the broker hands each message
to one of them. The session is persistent (clean start off, a long session expiry) and PUBACK is sent by hand
(paho's manual_ack) after the PostgreSQL commit, so a worker killed mid-stream leaves its unacknowledged messages
in its session and gets them again when it comes back under the same client id. Status and site messages are
retained, and MQTT 5 (4.8.2) sends no retained messages to a shared subscription (Mosquitto 2.0.11 does anyway;
others follow the spec), so every worker also subscribes to those two topics plainly: they are rare, and their
upserts keep the newest, so several copies change nothing.

Messages are committed in batches (up to `batch_size` or `batch_ms`, whichever comes first), one transaction
each, because one fsync'd commit per message bounded a worker at 100-200 messages/s (docs/hub.md, Scale). The
batch's events, their lots and alarm changes go as one INSERT each (store.write_many); if PostgreSQL refuses
one of them, the batch is redone one savepoint per message, so the refused one is kept as refused and the rest
commit; a batch that fails as a whole acknowledges nothing and the broker sends it again (every write is
idempotent). The worker
announces Receive Maximum (twice the batch) so the broker's in-flight window does not cut batches short.
Single-threaded: paho's loop() runs here with a timeout, so a partial batch is committed when its time is up.

A worker whose PostgreSQL is gone stops (exit 1) without acknowledging; its supervisor (systemd) starts it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub import store
from hub.contract import BadMessage, Reading, Record, Status, parse

log = logging.getLogger("coldchain.hub")
SHARED = ("events/epcis", "events/alarms", "readings/#")
PLAIN = ("status", "site")
RETRIES = 5  # a deadlock or serialization failure with another worker: the batch is redone whole
# SQLSTATE class 40; psycopg does not make 40P01 and 40001 subclasses of TransactionRollback (40000), so all three
REDO = (psycopg.errors.TransactionRollback, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 1883
    dsn: str = ""
    group: str = "hub"
    client_id: str = "hub-1"
    root: str = "coldchain"
    username: str | None = None
    password: str | None = None
    session_expiry: int = 7 * 24 * 3600  # how long the broker keeps a dead worker's messages for it
    readings: bool = True  # readings give the uplink lag; series themselves go to InfluxDB, not here
    report_every: int = 1000
    lag_flush_s: float = 2.0
    batch_size: int = 500  # messages per transaction at most
    batch_ms: int = 50  # how long the first message of a batch waits for others at most

    @property
    def receive_maximum(self) -> int:
        """Unacknowledged messages the broker may send us: a batch being committed and the next one filling."""
        return min(65535, 2 * self.batch_size)


@dataclass
class Counts:
    stored: int = 0
    duplicate: int = 0
    refused: int = 0
    readings: int = 0
    batches: int = 0
    largest: int = 0
    redone: int = 0  # batches redone whole after a deadlock or serialization failure with another worker

    def done(self) -> int:
        return self.stored + self.duplicate + self.refused + self.readings

    def add(self, other: Counts) -> None:
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.refused += other.refused
        self.readings += other.readings
        self.batches += other.batches
        self.largest = max(self.largest, other.largest)
        self.redone += other.redone

    def line(self, who: str) -> str:
        return (f"hub worker {who}: {self.stored} stored, {self.duplicate} duplicate, {self.refused} refused, "
                f"{self.readings} readings in {self.batches} batches (largest {self.largest}, {self.redone} redone)")


@dataclass
class Worker:
    settings: Settings
    counts: Counts = field(default_factory=Counts)
    _lag: dict[str, Reading] = field(default_factory=dict)
    _flushed: float = field(default_factory=time.monotonic)
    _conn: psycopg.Connection[Any] | None = None
    _batch: list[mqtt.MQTTMessage] = field(default_factory=list)
    _opened: float = 0.0  # monotonic time the batch's first message came
    _stop: bool = False

    def topics(self) -> list[tuple[str, SubscribeOptions]]:
        s, qos1 = self.settings, SubscribeOptions(qos=1)
        shared = [t for t in SHARED if s.readings or not t.startswith("readings")]
        return ([(f"$share/{s.group}/{s.root}/+/{t}", qos1) for t in shared]
                + [(f"{s.root}/+/{t}", qos1) for t in PLAIN])

    def db(self) -> psycopg.Connection[Any]:
        """Autocommit, so that every `transaction()` block is a real BEGIN ... COMMIT, never a stray savepoint."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.settings.dsn, application_name=self.settings.client_id,
                                         autocommit=True)
        return self._conn

    def write(self, messages: Sequence[tuple[str, bytes]], force_lag: bool = False) -> Counts:
        """Parse and store `messages` in one transaction, committed when this returns; refusals are kept."""
        for attempt in range(1, RETRIES + 1):
            try:
                return self._write_once(messages, force_lag)
            except REDO as exc:  # nothing of the batch is kept: redo it
                if attempt == RETRIES:
                    raise
                self.counts.redone += 1
                log.warning("batch of %d redone (%s)", len(messages), str(exc).splitlines()[0])
        raise AssertionError("unreachable")

    def _write_once(self, messages: Sequence[tuple[str, bytes]], force_lag: bool) -> Counts:
        counts, lag = Counts(batches=1, largest=len(messages)), dict(self._lag)
        conn = self.db()
        with conn.transaction():
            later = self._store(conn, self._parse(conn, messages, counts, lag), counts)
            flush = bool(lag) and (force_lag or time.monotonic() - self._flushed >= self.settings.lag_flush_s)
            for reading in lag.values() if flush else ():
                later.touch(reading.site, reading.ts)
            log.debug("batch of %d messages written; its centers and alerts next, then the commit", len(messages))
            later.finish(conn, round(time.time() * 1000))
            self._centers(conn, later, counts)
        self._lag = {} if flush else lag  # only now: a batch redone must not have lost the readings' times
        if flush:
            self._flushed = time.monotonic()
        self.counts.add(counts)
        return counts

    def _parse(self, conn: psycopg.Connection[Any], messages: Sequence[tuple[str, bytes]], counts: Counts,
               lag: dict[str, Reading]) -> list[tuple[str, Record]]:
        """The records to store; readings only give their site's newest time; what breaks the contract is kept."""
        out: list[tuple[str, Record]] = []
        for topic, payload in messages:
            try:
                record = parse(topic, payload, self.settings.root)
            except BadMessage as bad:
                self._refuse(conn, bad, counts)
                continue
            if isinstance(record, Reading):
                counts.readings += 1
                if record.site not in lag or lag[record.site].ts < record.ts:
                    lag[record.site] = record
            elif record is not None:
                out.append((topic, record))
        return out

    def _store(self, conn: psycopg.Connection[Any], records: list[tuple[str, Record]], counts: Counts) -> store.Later:
        """All records at once (one INSERT per table); if PostgreSQL refuses one, a savepoint each to keep the rest."""
        later = store.Later()
        try:
            with conn.transaction():
                outcomes = store.write_many(conn, [r for _, r in records], later)
        except psycopg.DataError:
            later = store.Later()
            outcomes = [self._one(conn, topic, record, later, counts) for topic, record in records]
        counts.stored += outcomes.count("stored")
        counts.duplicate += outcomes.count("duplicate")
        return later

    def _one(self, conn: psycopg.Connection[Any], topic: str, record: Record, later: store.Later,
             counts: Counts) -> str:
        try:
            with conn.transaction():  # a savepoint: what PostgreSQL refuses here leaves the batch intact
                return store.write(conn, record, later)
        except psycopg.DataError as exc:  # valid JSON PostgreSQL will not hold: a NUL character, a huge number
            self._refuse(conn, BadMessage(topic, f"PostgreSQL cannot store it: {exc}".splitlines()[0]), counts)
            return "refused"

    def _centers(self, conn: psycopg.Connection[Any], later: store.Later, counts: Counts) -> None:
        """Count the status and site messages written last (store.Later), keeping the refused ones."""
        for record, outcome in later.done:
            if outcome in ("stored", "duplicate"):
                counts.stored += outcome == "stored"
                counts.duplicate += outcome == "duplicate"
            else:
                kind = "status" if isinstance(record, Status) else "site"
                topic = f"{self.settings.root}/{record.site}/{kind}"
                self._refuse(conn, BadMessage(topic, outcome.removeprefix("refused: ")), counts)

    @staticmethod
    def _refuse(conn: psycopg.Connection[Any], bad: BadMessage, counts: Counts) -> None:
        """Kept and acknowledged: a message that can never be stored must not loop."""
        log.warning("refused %s", bad)
        store.reject(conn, bad)
        counts.refused += 1

    def on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not self._batch:
            self._opened = time.monotonic()
        self._batch.append(msg)

    def on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            raise RuntimeError(f"broker refused {self.settings.client_id}: {reason}")
        self._batch.clear()  # from a lost connection, never committed: the resumed session sends them again
        client.subscribe(self.topics())
        log.info("hub worker %s subscribed (group %s)", self.settings.client_id, self.settings.group)

    def client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        client.on_connect = self.on_connect
        client.on_message = self.on_message
        return client

    def flush(self, client: mqtt.Client, force_lag: bool = False) -> None:
        """Commit the batch, then PUBACK each of its messages in the order they came."""
        batch, self._batch = self._batch, []
        before = self.counts.done()
        self.write([(m.topic, bytes(m.payload)) for m in batch], force_lag)
        for m in batch:
            client.ack(m.mid, m.qos)
        every = max(1, self.settings.report_every)
        if batch and before // every != self.counts.done() // every:
            log.info("%s", self.counts.line(self.settings.client_id))

    def _wait(self) -> float:
        """Seconds paho may wait for the next packet: until the batch, or the lag write, is due."""
        now, s = time.monotonic(), self.settings
        if self._batch:
            return max(0.0, self._opened + s.batch_ms / 1000 - now)
        if self._lag:
            return max(0.0, self._flushed + s.lag_flush_s - now)
        return 1.0

    def _due(self) -> bool:
        if len(self._batch) >= self.settings.batch_size:
            return True
        if self._batch:
            return time.monotonic() - self._opened >= self.settings.batch_ms / 1000
        return bool(self._lag) and time.monotonic() - self._flushed >= self.settings.lag_flush_s

    def stop(self) -> None:
        """Finish the batch in hand, write the lag and leave (from a signal handler: SIGTERM)."""
        self._stop = True

    def run(self) -> None:
        """Until stop() or the process is killed; raises if PostgreSQL or the broker cannot be reached."""
        self.db()
        client = self.client()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.session_expiry
        props.ReceiveMaximum = self.settings.receive_maximum  # replaces the broker's max_inflight_messages for us
        client.connect(self.settings.host, self.settings.port, keepalive=30, clean_start=False, properties=props)
        try:
            self._serve(client)
            self.flush(client, force_lag=True)
            client.loop(0.5)  # send the last PUBACKs
            client.disconnect()
        finally:
            log.info("%s", self.counts.line(self.settings.client_id))

    def _serve(self, client: mqtt.Client) -> None:
        while not self._stop:
            if client.loop(self._wait()) != mqtt.MQTT_ERR_SUCCESS:
                self._batch.clear()  # not committed: the resumed session sends them again
                self._reconnect(client)
            elif self._due():
                self.flush(client)

    def _reconnect(self, client: mqtt.Client) -> None:
        while not self._stop:
            time.sleep(1)
            try:
                if client.reconnect() == mqtt.MQTT_ERR_SUCCESS:
                    return
            except OSError as exc:
                log.warning("hub worker %s: broker unreachable: %s", self.settings.client_id, exc)
