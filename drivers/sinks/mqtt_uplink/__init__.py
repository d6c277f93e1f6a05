"""`type: mqtt_uplink`: republish journaled readings to a central broker (QoS 1), with a retained
`<prefix>/status` message and a Last Will, so a regional dashboard sees a dead box.

A batch counts as delivered when the broker has acknowledged (PUBACK) every message in it; the
forwarder then advances the cursor. Delivery is at-least-once: after a crash a batch is published
again, so subscribers should key readings by (site, sensor, quantity, ts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from daemon.ports.errors import SinkError
from daemon.ports.model import Reading
from daemon.ports.sinks import AlarmEvent, LotEpcisEvent, Sink, SiteInfo
from drivers.registry import sink
from drivers.sinks.mqtt_uplink.schema import MqttUplinkConfig

__all__ = ["SAMPLE_YAML", "MqttUplinkConfig", "MqttUplinkSink"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sinks:` list item showing every option with its default."""


def payload(r: Reading, commodity: str | None) -> bytes:
    """One reading as JSON: its own ms timestamp, value in SI units, quality, and journal id."""
    body: dict[str, Any] = {"ts": round(r.ts * 1000), "value": r.value, "unit": r.quantity.unit,
                            "quality": "good" if r.good else "fault", "id": r.id}
    if r.note:
        body["note"] = r.note
    if commodity:
        body["commodity"] = commodity
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


ALARM_STATES = {"firing": "open", "acknowledged": "acknowledged", "resolved": "resolved", "closed": "closed"}
"""Alarm audit states that are state changes for the hub; pending, escalated, comments ... are not sent."""


def site_payload(info: SiteInfo) -> bytes:
    """The retained `<prefix>/site` message (docs: the box-to-hub contract in README.md)."""
    body = {"site": info.site, "name": info.name, "kind": info.kind, "timezone": info.timezone,
            "location": {"lat": info.location[0], "lon": info.location[1]} if info.location else None,
            "rooms": [{"zone": r.zone, "name": r.name, "commodity": r.commodity,
                       "capacity": {"value": r.capacity[0], "unit": r.capacity[1]} if r.capacity else None}
                      for r in info.rooms],
            "ts": round(time.time() * 1000)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def alarm_payload(e: AlarmEvent) -> bytes | None:
    """One alarm state change as `<prefix>/events/alarms` carries it, or None for entries that are not one."""
    state = ALARM_STATES.get(e.state)
    if state is None:
        return None
    body = {"id": e.uid or e.alert_id, "site": e.site, "zone": e.zone, "sensor": e.sensor, "kind": e.kind,
            "state": state, "ts": round(e.ts * 1000), "value": e.value, "by": None if e.who == "system" else e.who,
            "text": e.text or f"{e.zone} {e.kind} {state}"}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@sink("mqtt_uplink")
class MqttUplinkSink(Sink):
    """One paho client (its own network thread); connects on the first batch, which names the site."""

    Config = MqttUplinkConfig
    supports_events = True
    supports_epcis = True

    def __init__(self, config: MqttUplinkConfig, commodities: dict[str, str]) -> None:
        super().__init__(config, commodities)
        self.cfg = config
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._conn_ts = 0  # ms: the ts of this connection's "online" and of its Last Will
        self._refused: str | None = None
        self.prefix = ""
        self.site: SiteInfo | None = None
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        return f"mqtt_uplink:{self.config.id} ({self.cfg.host}:{self.cfg.port})"

    def status_topic(self) -> str:
        return f"{self.prefix}/status"

    def topic(self, r: Reading) -> str:
        return f"{self.prefix}/readings/{r.zone}/{r.sensor}/{r.quantity.value}"

    @staticmethod
    def _status(state: str, ts_ms: int | None = None) -> bytes:
        return json.dumps({"state": state, "ts": round(time.time() * 1000) if ts_ms is None else ts_ms}).encode()

    def _arm_will(self, client: mqtt.Client) -> None:
        """The Last Will and the next "online" carry the same ts, that of the coming connection: the hub keeps
        the newest status by ts (offline wins a tie), so the will of a box that dies is never older than the
        "online" it sent when it connected (it was, and the hub ignored the will)."""
        self._conn_ts = round(time.time() * 1000)
        client.will_set(self.status_topic(), self._status("offline", self._conn_ts), qos=1, retain=True)

    # -- connection (runs in a worker thread)

    def _connect(self, site: str) -> mqtt.Client:
        cfg = self.cfg
        self.prefix = cfg.topic_prefix.replace("{site}", site)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"coldchain-{site}-{cfg.id}",
                             clean_session=True)
        client.connect_timeout = cfg.timeout
        client.max_inflight_messages_set(cfg.max_inflight)
        self._arm_will(client)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, self.cfg.secret(self.source))
        if cfg.tls is not None:
            client.tls_set_context(cfg.tls.context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._connected.clear()
        self._refused = None
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive)
        except (OSError, ValueError) as exc:
            raise SinkError(self.source, f"cannot connect: {exc}") from None
        client.loop_start()
        if (failure := self._connack(cfg.timeout)) is not None:
            client.loop_stop()
            client.disconnect()
            raise SinkError(self.source, failure)
        return client

    def _connack(self, timeout: float) -> str | None:
        """Why the connection is not up after `timeout` (paho's thread sets `_refused`, then `_connected`), or None."""
        connected = self._connected.wait(timeout)
        if self._refused:
            return f"broker refused the connection: {self._refused}"
        return None if connected else f"no CONNACK within {timeout:g} s"

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        else:  # also after paho's own reconnects: the retained status says online again, and what the site is
            client.publish(self.status_topic(), self._status("online", self._conn_ts), qos=1, retain=True)
            if self.site is not None:
                client.publish(f"{self.prefix}/site", site_payload(self.site), qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, *_args: Any) -> None:
        self._connected.clear()
        self._arm_will(client)  # paho reconnects by itself: that connection gets a newer ts

    # -- the seam

    def describe(self, site: SiteInfo) -> None:
        """Keep the site for the retained `site` message; sent again at once if connected (a config change)."""
        self.site = site
        client = self._client
        if client is not None and self._connected.is_set():
            client.publish(f"{self.prefix}/site", site_payload(site), qos=1, retain=True)

    async def write(self, readings: Sequence[Reading]) -> None:
        await asyncio.to_thread(self._publish, readings[0].site,
                                [(f"{{p}}/readings/{r.zone}/{r.sensor}/{r.quantity.value}",
                                                  payload(r, self.commodities.get(r.zone))) for r in readings])

    async def write_events(self, events: Sequence[AlarmEvent]) -> None:
        msgs = [("{p}/events/alarms", body) for e in events if (body := alarm_payload(e)) is not None]
        if msgs:
            await asyncio.to_thread(self._publish, events[0].site, msgs)

    async def write_epcis(self, events: Sequence[LotEpcisEvent]) -> None:
        msgs = [("{p}/events/epcis", json.dumps(e.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
                for e in events]
        await asyncio.to_thread(self._publish, str(events[0].body.get("cc:site", "")), msgs)

    def _publish(self, site: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """QoS 1 messages in order ("{p}" in a topic is the prefix); returns when the broker acknowledged all.
        One at a time: the forwarder sends readings and events from two threads, and two connections under one
        client id made the broker drop each in turn (a reconnect storm, with resends)."""
        with self._lock:
            self._publish_locked(site, messages)

    def _publish_locked(self, site: str, messages: Sequence[tuple[str, bytes]]) -> None:
        if self._client is None:
            self._client = self._connect(self.site.site if self.site else site)
        client = self._client
        deadline = time.monotonic() + self.cfg.timeout
        try:
            infos = [client.publish(topic.replace("{p}", self.prefix), body, qos=1) for topic, body in messages]
            for info in infos:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                if not info.is_published():
                    raise SinkError(self.source, f"no PUBACK within {self.cfg.timeout:g} s")
        except (RuntimeError, ValueError) as exc:  # paho: not connected, queue full
            self._drop()
            raise SinkError(self.source, f"publish failed: {exc}") from None
        except SinkError:
            self._drop()
            raise

    def _drop(self) -> None:
        """Forget a broken connection; the next batch connects afresh (and the batch is resent)."""
        client, self._client = self._client, None
        if client is not None:
            client.loop_stop()
            client.disconnect()

    async def close(self) -> None:
        """A clean goodbye: the retained status says offline (a DISCONNECT suppresses the Last Will)."""
        client, self._client = self._client, None
        if client is None:
            return

        def bye() -> None:
            info = client.publish(self.status_topic(), self._status("offline"), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # going anyway; the Will covers a failure
                info.wait_for_publish(self.cfg.timeout)
            client.disconnect()
            client.loop_stop()

        await asyncio.to_thread(bye)
