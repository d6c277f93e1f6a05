"""One hub worker: an MQTT 5 client in the broker's shared subscription, acknowledging a message only after commit.

Several workers with the same `group` split the boxes' stream (`$share/<group>/...`): the broker hands each message
to one of them. The session is persistent (clean start off, a long session expiry) and PUBACK is sent by hand
(paho's manual_ack) after the PostgreSQL commit, so a worker killed mid-stream leaves its unacknowledged messages
in its session and gets them again when it comes back under the same client id. Status and site messages are
retained, and MQTT 5 (4.8.2) sends no retained messages to a shared subscription (Mosquitto 2.0.11 does anyway;
others follow the spec), so every worker also subscribes to those two topics plainly: they are rare, and their
upserts keep the newest, so several copies change nothing.

A worker whose PostgreSQL is gone stops (exit 1) without acknowledging; its supervisor (systemd) starts it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub import store
from hub.contract import BadMessage, Reading, parse

log = logging.getLogger("coldchain.hub")
SHARED = ("events/epcis", "events/alarms", "readings/#")
PLAIN = ("status", "site")


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


@dataclass
class Counts:
    stored: int = 0
    duplicate: int = 0
    refused: int = 0
    readings: int = 0

    def line(self, who: str) -> str:
        return (f"hub worker {who}: {self.stored} stored, {self.duplicate} duplicate, {self.refused} refused, "
                f"{self.readings} readings")


@dataclass
class Worker:
    settings: Settings
    counts: Counts = field(default_factory=Counts)
    _lag: dict[str, Reading] = field(default_factory=dict)
    _flushed: float = field(default_factory=time.monotonic)
    _conn: psycopg.Connection[Any] | None = None

    def topics(self) -> list[tuple[str, SubscribeOptions]]:
        s, qos1 = self.settings, SubscribeOptions(qos=1)
        shared = [t for t in SHARED if s.readings or not t.startswith("readings")]
        return ([(f"$share/{s.group}/{s.root}/+/{t}", qos1) for t in shared]
                + [(f"{s.root}/+/{t}", qos1) for t in PLAIN])

    def db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.settings.dsn, application_name=self.settings.client_id)
        return self._conn

    def handle(self, topic: str, payload: bytes) -> None:
        """Parse and store one message (committed when this returns); a refusal is kept, counted and logged."""
        try:
            record = parse(topic, payload, self.settings.root)
            if record is None:
                return
            if isinstance(record, Reading):  # only its time matters: keep the newest per site, flush now and then
                self.counts.readings += 1
                if record.site not in self._lag or self._lag[record.site].ts < record.ts:
                    self._lag[record.site] = record
                self.flush_lag(force=False)
                return
            try:
                outcome = store.apply(self.db(), record)
            except psycopg.DataError as exc:  # valid JSON PostgreSQL will not hold: a NUL character, a huge number
                raise BadMessage(topic, f"PostgreSQL cannot store it: {exc}".splitlines()[0]) from None
        except BadMessage as bad:  # kept and acknowledged: a message that can never be stored must not loop
            log.warning("refused %s", bad)
            store.reject(self.db(), bad)
            self.counts.refused += 1
            return
        self.counts.stored += outcome == "stored"
        self.counts.duplicate += outcome == "duplicate"

    def flush_lag(self, force: bool) -> None:
        if self._lag and (force or time.monotonic() - self._flushed >= self.settings.lag_flush_s):
            for record in self._lag.values():
                try:
                    store.apply(self.db(), record)
                except psycopg.DataError as exc:  # only the lag is lost, and the next reading brings it back
                    log.warning("uplink lag of %s not kept: %s", record.site, str(exc).splitlines()[0])
            self._lag.clear()
            self._flushed = time.monotonic()

    def on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.handle(msg.topic, bytes(msg.payload))
        client.ack(msg.mid, msg.qos)  # PUBACK only now: the record is committed (or kept as refused)
        done = self.counts.stored + self.counts.duplicate + self.counts.refused + self.counts.readings
        if done % self.settings.report_every == 0:
            log.info("%s", self.counts.line(self.settings.client_id))

    def on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            raise RuntimeError(f"broker refused {self.settings.client_id}: {reason}")
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

    def run(self) -> None:
        """Until the process is stopped; raises if PostgreSQL or the broker cannot be reached."""
        self.db()
        client = self.client()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.session_expiry
        client.connect(self.settings.host, self.settings.port, keepalive=30, clean_start=False, properties=props)
        try:
            client.loop_forever()
        finally:
            self.flush_lag(force=True)
            log.info("%s", self.counts.line(self.settings.client_id))
