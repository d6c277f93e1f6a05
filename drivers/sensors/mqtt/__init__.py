"""`type: mqtt`: sensors whose readings arrive on one MQTT broker (Tasmota, Zigbee2MQTT, Shelly,
ESPHome, Home Assistant style and config-mapped JSON).

One paho-mqtt client per daemon, driven by the asyncio loop (aioloop.py; no network thread of its own).
QoS 1 messages are acknowledged to the broker only after `ctx.emit()` returned, i.e. after
the readings are in the journal, and the session is persistent, so nothing published while
the daemon was down or crashing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from daemon.ports.broker import MqttConfig
from daemon.ports.errors import SensorError
from daemon.ports.model import Sample, new_sample
from daemon.ports.payloads import PayloadError
from daemon.ports.sources import DriverContext, Receipt, SensorBase, SensorDriver
from daemon.ports.stats import OnceSet
from drivers.registry import sensor
from drivers.sensors.mqtt.acks import ack_all
from drivers.sensors.mqtt.aioloop import LoopedClient
from drivers.sensors.mqtt.formats import BadPayload, DeviceState, parse
from drivers.sensors.mqtt.redelivery import ReceiptBook
from drivers.sensors.mqtt.replay import ReplayWatch
from drivers.sensors.mqtt.schema import MqttSensorConfig
from drivers.sensors.mqtt.topics import availability_topic, data_topics, discovery_filters, minimal, parse_online
from drivers.sensors.mqtt.window import WindowWatch

__all__ = ["SAMPLE_YAML", "MqttDriver", "MqttSensorConfig"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sensors:` list with one entry per format."""

SETTLE_TIMEOUT = 5.0  # seconds a shutdown waits for the last acknowledgements
INFLIGHT_BATCHES = 8  # at least this many batches handed to the journal and not yet acknowledged (see _run)
STORED_UNACKED_MAX = 100_000  # stored messages whose acknowledgement the connection took with it (see _ack)
BATCH_MAX = 500  # messages journaled (and acknowledged) together, unless storage.batch_max is larger
UNMAPPED_MAX = 200  # topics remembered for the installer
PAYLOAD_SHOWN = 200  # characters of a payload kept for `unmapped` / `probe`
SUB_EXACT, SUB_DISCOVER = 1, 2  # MQTT 5 subscription identifiers
AUTH_CODES = {"Not authorized", "Bad user name or password", "Bad username or password"}
# What paho 2.2 reports when a broker answers an MQTT 5 CONNECT with the MQTT 3.1.1 CONNACK return code 0x01
# (unacceptable protocol version, MQTT 3.1.1 section 3.2.2.3), or a v5 broker with reason code 0x84.
UNSUPPORTED_PROTOCOL = "Unsupported protocol version"


STALL_CHECK_S = 1.1
"""How long after the messages stopped at a suspected window's count the driver looks again (window.QUIET_S and a
margin): still stopped, it commits instead of waiting out `storage.flush_interval`."""
_Held = tuple[int, int, int, bytes, bytes | bytearray]
"""A message awaiting its acknowledgement: connection generation, packet id, QoS, topic and payload bytes. Not
paho's MQTTMessage, which with its info and threading.Condition is ~1.8 KB against this ~160 B (tracemalloc,
session 12): a 60 s window holds up to 750 of them (`_ack` needs topic and payload only for a dropped
connection's messages)."""
_Batch = tuple[asyncio.Future[None] | None, list[_Held]]
"""A submitted batch: its commit (None: nothing to store) and the messages to acknowledge after it."""


@dataclass(frozen=True)
class _Conn:
    """A connection event from paho's callbacks: connected, refused, lost or unreachable."""

    kind: str
    detail: str = ""
    marker: bytes | None = None  # a resumed session's replay marker (replay.py)


def _poster(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object]) -> Callable[[object], None]:
    """Hand an item from paho's thread to the loop (probe()'s client); after shutdown (loop closed) drop it
    quietly, since an exception here would kill paho's network thread.

    Items go through a list, and the loop is woken only when the list was empty: one
    call_soon_threadsafe (a write to the loop's self-pipe) per message was 15 % of the CPU of
    a backlog drain (py-spy); under load many messages now share one wake-up, order kept."""
    pending: list[object] = []
    lock = threading.Lock()

    def deliver() -> None:
        with lock:
            items = pending[:]
            pending.clear()
        for item in items:
            queue.put_nowait(item)

    def post(item: object) -> None:
        with lock:
            pending.append(item)
            if len(pending) > 1:
                return  # a wake-up is already on its way and will take this one too
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver)

    return post


def replayed_copy(s: Sample) -> Sample:
    """`s` flagged as replayed. Not dataclasses.replace, which reads the fields on every call: this runs for
    every message of a backlog (tests/drivers/sensors/mqtt/test_redelivery.py checks it copies every field)."""
    return new_sample(s.sensor, s.quantity, s.value, s.unit, s.ts, s.fault, True)


async def _unless_failed(aw: Coroutine[Any, Any, Any], *guards: asyncio.Task[None]) -> Any:
    """Await `aw`, unless one of `guards` (the acker, the network task) ends first: then re-raise why it ended."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task, *guards}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    for guard in done:
        guard.result()
    raise RuntimeError(f"MQTT {', '.join(g.get_name() for g in done)} stopped")


def _shown(payload: bytes) -> str:
    return payload[:PAYLOAD_SHOWN].decode("utf-8", errors="replace")


@sensor("mqtt")
class MqttDriver(SensorDriver):
    """All MQTT sensors share this one instance: one connection, one persistent session."""

    Config = MqttSensorConfig
    acknowledges = True  # PUBACK after the commit: the broker resends the rest

    @classmethod
    def group(cls, sensors: Sequence[SensorBase]) -> list[list[SensorBase]]:
        return [list(sensors)] if sensors else []

    def __init__(self, sensors: Sequence[SensorBase], ctx: DriverContext) -> None:
        super().__init__(sensors, ctx)
        if not all(isinstance(s, MqttSensorConfig) for s in self.sensors):
            raise TypeError("MqttDriver serves MqttSensorConfig sensors only")
        self.configs: list[MqttSensorConfig] = [s for s in self.sensors if isinstance(s, MqttSensorConfig)]
        settings = ctx.settings
        self.mqtt: MqttConfig = (settings.mqtt if settings is not None else None) or MqttConfig.model_validate({})
        site = settings.site.id if settings is not None else "site"
        self.site_tz = settings.site.timezone if settings is not None else "UTC"
        self.client_id = self.mqtt.client_id or f"coldchain-{site}"
        self.routes: dict[str, list[MqttSensorConfig]] = {}
        self.avail: dict[str, list[MqttSensorConfig]] = {}
        for s in self.configs:
            for t in data_topics(s):
                self.routes.setdefault(t, []).append(s)
            a = availability_topic(s)
            if a:
                self.avail.setdefault(a, []).append(s)
        exact = minimal([*self.routes, *self.avail])
        derived = [f for s in self.configs for f in discovery_filters(s)]
        wild = self.mqtt.discover if self.mqtt.discover is not None else derived
        self.discover = [f for f in minimal(wild) if f not in exact]
        self.exact = exact
        self.subscriptions = [(t, self.mqtt.qos) for t in exact] + [(f, 0) for f in self.discover]
        self.states = {s.id: DeviceState(site_timezone=self.site_tz) for s in self.configs}
        self.connected = False
        self.state = "not started"
        self.last_message: dict[str, float] = {}
        self.last_values: dict[str, dict[str, Any]] = {}
        self.unmapped: dict[str, str] = {}
        self.bad: dict[str, str] = {}
        self.counters: Counter[str] = Counter()
        self._logged = OnceSet()
        self._gen = 0  # bumped on every (dis)connect: acks of an old connection's mids are void
        self._gen_lock = threading.Lock()
        self._client: paho.Client | None = None
        self._quiet = False  # shutting down (quiesce): take no new messages
        self._inflight: asyncio.Queue[Any] | None = None  # batches submitted and not yet acknowledged
        self._awaiting = 0  # QoS 1 messages taken and not yet acknowledged: what the broker counts in flight
        self._backlog_done = False  # the broker's replay just ended: commit it now (`_replay_ended`)
        # the protocol spoken: mqtt.protocol, until a broker refuses MQTT 5 (then 3.1.1 for this process)
        self.protocol: str = self.mqtt.protocol
        self._trying_311 = False  # a broker closed on a v5 CONNECT: 3.1.1 is being tried (see _conn_event)
        self._tried_311 = False
        self._switch: tuple[str, str] | None = None  # (protocol, why): run() starts again with it
        self.window = WindowWatch()  # a smaller window the broker keeps to than the one configured (window.py)
        self._hurry_at = self._early_commit_at()
        self._retained_gen = -1
        self._retained_seen: set[tuple[str, int]] = set()
        # (packet id, topic, payload) of messages journaled whose acknowledgement could not be sent (the
        # connection dropped during their commit): the broker resends them with DUP set, and they are
        # acknowledged without being stored twice. Touched under _gen_lock (the acker and the loop).
        self._stored_unacked: Counter[tuple[int, str, bytes]] = Counter()
        self._book = ReceiptBook()  # what was stored, across a kill too (read back in run())
        self._replay = ReplayWatch(self.client_id)

    @property
    def source(self) -> str:
        return f"mqtt:{self.mqtt.host}:{self.mqtt.port}"

    def _broker_window(self) -> int:
        """How many QoS 1 messages the broker sends before it waits for our acknowledgements."""
        m = self.mqtt
        configured = m.receive_maximum if self.protocol == "5" and m.receive_maximum is not None else m.broker_inflight
        learned = self.window.learned
        return configured if learned is None else min(configured, learned)

    def _early_commit_at(self) -> int:
        """Unacknowledged messages at which to commit without waiting out the window: 3/4 of the broker's."""
        return max(1, self._broker_window() * 3 // 4)

    def _check_stall(self) -> None:
        """STALL_CHECK_S after the messages reached a suspected window's count: still stopped, commit (window.py)."""
        if self.window.stalled(time.monotonic(), self._awaiting):
            self.ctx.hurry()

    def _window_changed(self) -> None:
        """The broker's traffic showed a smaller window, or that the one learned was not one (window.py)."""
        self._hurry_at = self._early_commit_at()
        if self.window.learned is None:
            self.ctx.log.info("%s: the broker sent past the window seen before; committing at %d again",
                              self.source, self._hurry_at)
            return
        self.counters["broker_window_learned"] += 1
        v5 = self.protocol == "5" and self.mqtt.receive_maximum is not None
        setting = "mqtt.receive_maximum" if v5 else "mqtt.broker_inflight"
        self.ctx.log.warning(
            "%s: the broker stopped sending at %d unacknowledged QoS 1 messages twice (its "
            "in-flight window; %s is set higher): committing at %d from now on. A bigger broker window writes "
            "the SD card less (EMQX: mqtt.max_inflight; docs/robustness.md)",
            self.source, self.window.learned, setting, self._hurry_at)

    # ------------------------------------------------------------------ client

    def _password(self) -> str | None:
        ref = self.mqtt.password_ref()
        try:
            return None if ref is None else ref.resolve()
        except ValueError as exc:
            raise SensorError(self.source, f"mqtt: {exc}") from exc

    def _make_client(self, client_id: str, persistent: bool, manual_ack: bool) -> paho.Client:
        """A configured, not yet connected client; raises SensorError for unusable TLS/password files."""
        m = self.mqtt
        if self.protocol == "5":
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        else:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent,
                                 protocol=paho.MQTTv311)
        if m.username is not None:
            client.username_pw_set(m.username, self._password())
        if m.tls is not None:
            try:
                client.tls_set_context(m.tls.context())
            except (OSError, ValueError) as exc:
                raise SensorError(self.source, f"mqtt.tls: {exc}") from exc
        client.reconnect_delay_set(int(max(1, m.reconnect_min)), int(max(m.reconnect_min, m.reconnect_max)))
        client.manual_ack_set(manual_ack)
        return client

    def _connect_async(self, client: paho.Client, persistent: bool) -> None:
        m = self.mqtt
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = int(m.session_expiry) if persistent else 0
            if m.receive_maximum is not None:  # the broker's in-flight window for us (docs/robustness.md)
                props.ReceiveMaximum = m.receive_maximum
            client.connect_async(m.host, m.port, m.keepalive, clean_start=not persistent, properties=props)
        else:
            client.connect_async(m.host, m.port, m.keepalive)

    def _subscribe(self, client: paho.Client, qos: int) -> None:
        """Exact sensor topics at `qos`, discovery wildcards at QoS 0 (the broker queues none of those)."""
        if self.protocol != "5":
            client.subscribe([(t, qos) for t in self.exact] + [(f, 0) for f in self.discover])
            return
        # MQTT 5 brokers may send one copy per matching filter: the subscription identifier
        # tells a sensor topic's own copy (SUB_EXACT) from the discovery copy, which is dropped.
        # retainHandling 1: retained copies only for a new subscription, not on every resume.
        for sub_id, topics, q in ((SUB_EXACT, self.exact, qos), (SUB_DISCOVER, self.discover, 0)):
            if topics:
                props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
                props.SubscriptionIdentifier = sub_id
                client.subscribe([(t, SubscribeOptions(qos=q, retainHandling=1)) for t in topics],
                                 properties=props)

    @staticmethod
    def _discovery_copy(msg: paho.MQTTMessage) -> bool:
        """An MQTT 5 copy delivered only for a discovery wildcard (its sensor copy comes separately)."""
        ids = getattr(getattr(msg, "properties", None), "SubscriptionIdentifier", None)
        return isinstance(ids, list) and bool(ids) and SUB_EXACT not in ids

    def _wire(self, client: paho.Client, post: Callable[[object], object], qos: int, acking: bool = True) -> None:
        """Callbacks run where the client is driven (the loop for run(), paho's thread for probe()); they only post.
        `acking` clients bump the connection generation that `_ack` checks."""

        def bump() -> None:
            if acking:
                with self._gen_lock:
                    self._gen += 1

        def on_connect(c: paho.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
            if rc.is_failure:
                post(_Conn("refused", str(rc)))
                return
            bump()
            self._subscribe(c, qos)
            resumed = bool(getattr(flags, "session_present", False))
            marker = self._send_marker(c) if resumed and acking else None
            post(_Conn("connected", "session resumed" if resumed else "new session", marker))

        def on_disconnect(_c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            bump()
            post(_Conn("lost", str(rc)))

        def on_connect_fail(_c: paho.Client, _u: Any) -> None:
            post(_Conn("unreachable", "connection refused or timed out"))

        def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            post((self._gen, msg))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_connect_fail = on_connect_fail
        client.on_message = on_message

    def _send_marker(self, client: paho.Client) -> bytes:
        """Publish the replay marker the broker queues behind this session's backlog (replay.py)."""
        marker = secrets.token_hex(8).encode()
        topic = self._replay.topic
        client.subscribe(topic, qos=1)
        client.publish(topic, marker, qos=1)
        return marker

    @staticmethod
    def _shutdown(client: paho.Client) -> None:
        with contextlib.suppress(Exception):
            client.disconnect()
        with contextlib.suppress(Exception):
            client.loop_stop()

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        """Receive, journal, then acknowledge; the client runs in this loop and reconnects with backoff
        (aioloop.py). A broker that refuses MQTT 5 gets a new client that speaks 3.1.1 (`_conn_event`)."""
        while True:
            await self._run()
            switch, self._switch = self._switch, None
            if switch is None:
                return
            self.protocol, why = switch
            self._hurry_at = self._early_commit_at()
            self.ctx.log.warning("%s: %s; connecting again with MQTT %s (in-flight window %d: a commit at the "
                                 "latest every %d messages)", self.source, why, self.protocol,
                                 self._broker_window(), self._hurry_at)

    async def _run(self) -> None:
        """One client of `self.protocol` until it fails, or until `self._switch` asks for the other protocol."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        try:
            client = self._make_client(self.client_id, self.mqtt.persistent_session, manual_ack=True)
        except SensorError as exc:
            self._conn_event(_Conn("unusable", str(exc)))
            await asyncio.sleep(max(self.mqtt.reconnect_max, 1.0))
            return  # the supervisor starts run() again: the file may be fixed by then
        self._wire(client, queue.put_nowait, self.mqtt.qos)  # callbacks run in this loop (aioloop.py)
        self._client = client
        self.state = f"connecting to {self.mqtt.host}:{self.mqtt.port}"
        m = self.mqtt
        net = LoopedClient(client, (max(1.0, m.reconnect_min), max(m.reconnect_min, m.reconnect_max)),
                           lambda why: queue.put_nowait(_Conn("unreachable", why)))
        self._connect_async(client, self.mqtt.persistent_session)
        network = asyncio.create_task(net.run(), name=f"{self.source} network")
        try:
            self._book = ReceiptBook(self.ctx.recent_receipts(self.source))
            # Batches are handed on without waiting for their commit (that is the acker's job), so the
            # next batch is parsed and screened by the rules while the journal writes this one. At a sensor
            # rate every message is a batch of its own, and a commit window holds hundreds of them (5 s at
            # 500 sensors / 10 s: 250): a full queue would stop the screen and the live view until the
            # window's commit (with 8, as before session 11, the 9th message of a window waited for it). The
            # broker's window bounds what it sends unacknowledged, and the early commit (_hurry_at) comes first.
            inflight: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=max(INFLIGHT_BATCHES, self._broker_window()))
            acker = asyncio.create_task(self._acker(client, inflight), name=f"{self.source} acks")
            self._inflight = inflight
            try:
                await self._receive(queue, inflight, (acker, network))
                with contextlib.suppress(TimeoutError):  # a protocol switch: acknowledge what was stored
                    await asyncio.wait_for(inflight.join(), timeout=SETTLE_TIMEOUT)
            finally:
                acker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await acker
        finally:
            self._client = None
            self.connected = False
            network.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await network
            await net.stop()

    async def _receive(self, queue: asyncio.Queue[object], inflight: asyncio.Queue[_Batch],
                       guards: tuple[asyncio.Task[None], ...]) -> None:
        """Take what arrived in batches, submit each to the journal and hand it to the acker; until a guard
        (the acker, the network task) fails, or a connection event asks for the other protocol (returns)."""
        # A full batch must reach the pipeline's batch_max, or every batch of a backlog waits out
        # flush_interval before its commit (and its acks): the bench measured 2,000 msg/s that way.
        settings = self.ctx.settings
        batch_max = max(BATCH_MAX, settings.storage.batch_max if settings is not None else 0)
        submit = self.ctx.submitter()
        while True:
            for guard in guards:
                if guard.done():
                    guard.result()  # re-raises why it stopped (a failed commit, a bug)
            batch = [queue.get_nowait() if not queue.empty() else await _unless_failed(queue.get(), *guards)]
            if self._quiet:
                continue  # shutting down: not submitted, not acknowledged, so redelivered next run
            while not queue.empty() and len(batch) < batch_max:
                batch.append(queue.get_nowait())
            samples, acks = self._take(batch)
            if acks:
                receipt = Receipt(self.source, self._book.body([m for _, m in acks])) if samples else None
                held = [(gen, m.mid, m.qos, m._topic, m.payload) for gen, m in acks]
                entry = (submit(samples, receipt) if samples else None, held)
                counted = sum(1 for h in held if h[2])
                self._awaiting += counted
                if counted and self.window.arrived(time.monotonic(), counted, self._awaiting):
                    self._window_changed()
                if counted and self.window.suspect() == self._awaiting:  # window.py: the second stall is ours
                    asyncio.get_running_loop().call_later(STALL_CHECK_S, self._check_stall)
                if self._awaiting >= self._hurry_at or self._backlog_done:
                    self._backlog_done = False
                    self.ctx.hurry()  # the broker is about to stop sending until we acknowledge, or is done
                if inflight.full():
                    await _unless_failed(inflight.put(entry), *guards)
                else:
                    inflight.put_nowait(entry)
            if self._switch is not None:
                return

    def _take(self, batch: list[object]) -> tuple[list[Sample], list[tuple[int, paho.MQTTMessage]]]:
        """The samples of a batch of received messages and the messages to acknowledge once they are stored;
        connection events on the way are applied in order."""
        samples: list[Sample] = []
        acks: list[tuple[int, paho.MQTTMessage]] = []
        now = self.ctx.clock.now()  # the batch arrived together: one receive time for its messages
        replay = self._replay
        for item in batch:
            if isinstance(item, _Conn):
                self._conn_event(item)
                continue
            assert isinstance(item, tuple)
            gen, msg = item
            acks.append(item)
            topic = msg.topic  # a property that decodes the topic's bytes on every access: once per message
            if replay.is_marker(topic):
                replay.marker(bytes(msg.payload))
                self._replay_ended()
                continue
            replayed = replay.replaying() or bool(msg.retain)  # a retained value is old too
            if replay.ended is not None:
                self._replay_ended()
            if msg.dup and (self._already_stored(msg) or self._stored_before(msg)):
                continue
            samples += self._handle(msg, gen, replayed, topic, now)
        return samples, acks

    async def _acker(self, client: paho.Client, inflight: asyncio.Queue[_Batch]) -> None:
        """Acknowledge each batch once its readings are committed, in order; a failed commit (disk full)
        ends the run unacknowledged, so the broker redelivers after the reconnect."""
        while True:
            committed, acks = await inflight.get()
            if committed is not None:
                await asyncio.wait({committed})  # not `await committed`: cancelling us must not cancel it
                committed.result()
            self._ack(client, acks)
            inflight.task_done()

    def _ack(self, client: paho.Client, acks: list[_Held]) -> None:
        """Acknowledge in arrival order. A message of a dropped connection cannot be: it is stored, and the
        broker will resend it (same packet id, DUP set) on the resumed session; remember it, so that copy is
        acknowledged and not stored again (the soak found one such duplicate per broker restart)."""
        mids: list[int] = []
        with self._gen_lock:
            for gen, mid, qos, topic, payload in acks:
                if qos == 0:
                    continue
                if gen != self._gen:
                    if len(self._stored_unacked) < STORED_UNACKED_MAX:  # the key of `_already_stored`
                        self._stored_unacked[(mid, topic.decode("utf-8"), bytes(payload))] += 1
                elif qos == 1:
                    mids.append(mid)
                else:
                    client.ack(mid, qos)
            ack_all(client, mids)  # under the lock: a reconnect must not come between the check and the queue
        if mids:
            self.window.acked(time.monotonic(), self._awaiting)
        self._awaiting = max(0, self._awaiting - sum(1 for h in acks if h[2]))

    def _already_stored(self, msg: paho.MQTTMessage) -> bool:
        """A resent message (DUP) that was journaled before its connection dropped: acknowledge, don't store."""
        key = (msg.mid, msg.topic, bytes(msg.payload))
        with self._gen_lock:
            n = self._stored_unacked.get(key, 0)
            if not n:
                return False
            if n == 1:
                del self._stored_unacked[key]
            else:
                self._stored_unacked[key] = n - 1
        self.counters["redelivered_already_stored"] += 1
        return True

    def _replay_ended(self) -> None:
        """Log the end of a resumed session's backlog: how many messages were stamped on arrival as replays.
        Its tail is committed at once rather than after `storage.flush_interval` (60 s): the broker's queue is
        drained, and the history and the uplinks get the backlog a restart or a dropped link held back."""
        how, self._replay.ended = self._replay.ended, None
        if how is None:
            return
        self._backlog_done = True
        n = self._replay.count
        if how == "quiet":
            self.ctx.log.warning("%s: the replay marker on %s never came back (a broker ACL?); the backlog is taken "
                                 "as over after %d replayed messages and a quiet spell", self.source,
                                 self._replay.topic, n)
        elif n:
            self.ctx.log.info("%s: the broker replayed %d queued messages; readings without a device time among "
                              "them carry their arrival time and are flagged replayed", self.source, n)

    def _stored_before(self, msg: paho.MQTTMessage) -> bool:
        """A resent message (DUP) committed before a kill or a dropped connection (its receipt says so)."""
        if not self._book.stored(msg):
            return False
        self.counters["redelivered_already_stored"] += 1
        return True

    def quiesce(self) -> None:
        self._quiet = True

    async def settle(self) -> None:
        """Acknowledge what the shutdown's last commit stored: otherwise the broker redelivers it on the next
        start and the journal holds it twice."""
        inflight = self._inflight
        if inflight is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inflight.join(), timeout=SETTLE_TIMEOUT)

    async def close(self) -> None:
        client = self._client
        if client is not None:
            await asyncio.to_thread(self._shutdown, client)

    # ------------------------------------------------------------------ events (asyncio thread)

    def _once(self, *key: str) -> bool:
        return self._logged.first(key)

    def _all_online(self, online: bool, reason: str) -> None:
        for s in self.configs:
            self.ctx.set_online(s.id, online, reason)

    def _conn_event(self, ev: _Conn) -> None:
        where = f"{self.mqtt.host}:{self.mqtt.port}"
        log = self.ctx.log
        if ev.kind == "connected":
            if self._trying_311:
                self._trying_311 = False
                log.warning("%s: broker %s accepts MQTT 3.1.1 after closing an MQTT 5 connection; staying on "
                            "3.1.1", self.source, where)
            self.connected, self.state = True, f"connected ({ev.detail})"
            if ev.detail == "new session":  # the broker forgot the session: nothing will be resent
                with self._gen_lock:
                    self._stored_unacked.clear()
            if ev.marker is not None:
                self._replay.start(ev.marker)
            else:
                self._replay.stop()
            self._logged.keep(lambda k: k[0] == "bad")
            log.info("%s: connected as %s (%s)", self.source, self.client_id, ev.detail)
            self._all_online(True, f"MQTT broker {where} connected")
            return
        was = self.connected
        self.connected = False
        self._replay.stop()
        kind = ev.kind
        if kind == "lost" and not was:
            if self.state.startswith("broker refused"):
                self.counters["connection_lost"] += 1
                return  # the close that follows a refusal: keep saying why
            kind = "closed"  # e.g. a TLS listener that wants a client certificate
        if self._protocol_refused(kind, ev.detail, where):
            self.counters[f"connection_{kind}"] += 1
            return
        if kind == "refused":
            hint = " - check mqtt.username and mqtt.password" if ev.detail in AUTH_CODES else ""
            self.state = f"broker refused the connection: {ev.detail}{hint}"
        elif kind == "lost":
            self.state = f"connection lost: {ev.detail}"
        elif kind == "closed":
            self.state = f"broker closed the connection before accepting it: {ev.detail}"
        elif kind == "unreachable":
            self.state = f"cannot reach broker {where}: {ev.detail}"
        else:
            self.state = ev.detail
        self.counters[f"connection_{kind}"] += 1
        if self._once("conn", kind, ev.detail):
            (log.warning if kind == "lost" else log.error)("%s: %s", self.source, self.state)
        self._all_online(False, f"MQTT: {self.state}")

    def _protocol_refused(self, kind: str, detail: str, where: str) -> bool:
        """Whether a failed connect asks for the other protocol (`self._switch`, which run() acts on).

        A broker that speaks only MQTT 3.1.1 answers a v5 CONNECT with CONNACK 0x01 (MQTT 3.1.1 section
        3.1.2.2; paho reports "Unsupported protocol version"): the daemon speaks 3.1.1 from then on. One that
        closes the connection instead (no CONNACK) gets one try with 3.1.1; if that fails too, the close was
        not about the protocol, and the daemon goes back to MQTT 5 for good."""
        if self.protocol == "5" and kind == "refused" and detail == UNSUPPORTED_PROTOCOL:
            self.state = f"broker refused MQTT 5 ({detail}): connecting again with MQTT 3.1.1"
            self._switch = ("3.1.1", f"broker {where} refused MQTT 5 ({detail})")
            return True
        if self.protocol == "5" and kind == "closed" and self.mqtt.protocol == "5" and not self._tried_311:
            self._tried_311 = self._trying_311 = True
            self.state = "broker closed an MQTT 5 connection before accepting it: trying MQTT 3.1.1"
            self._switch = ("3.1.1", f"broker {where} closed an MQTT 5 connection before accepting it ({detail})")
            return True
        if self._trying_311 and kind in ("refused", "closed"):
            self._trying_311 = False
            self.state = f"MQTT 3.1.1 failed too ({kind}: {detail}): back to MQTT 5"
            self._switch = ("5", f"broker {where} did not accept MQTT 3.1.1 either ({kind}: {detail}), so MQTT 5 "
                                 "was not what it refused")
            return True
        return False

    def _bad_payload(self, topic: str, reason: str, payload: bytes) -> None:
        self.counters["bad_payloads"] += 1
        self.bad[topic] = reason
        if self._once("bad", topic, reason):
            self.ctx.log.warning("%s: bad payload on %s: %s (payload %r); counted, logged once",
                                 self.source, topic, reason, _shown(payload))

    def _handle(self, msg: paho.MQTTMessage, gen: int = 0, replayed: bool = False,
                topic: str | None = None, now: float | None = None) -> list[Sample]:
        """Route one message: availability, data for mapped sensors, or a note for the installer. `now`: its
        receive time (default: the clock's)."""
        topic, payload = msg.topic if topic is None else topic, bytes(msg.payload)
        data, av = self.routes.get(topic), self.avail.get(topic)
        if (data or av) and self.mqtt.protocol == "5" and self._discovery_copy(msg):  # only MQTT 5 has identifiers
            return []
        if msg.retain and self._retained_again(topic, payload, gen):
            return []
        if not data and not av:
            self.counters["unmapped_messages"] += 1
            if topic not in self.unmapped and len(self.unmapped) < UNMAPPED_MAX:
                self.unmapped[topic] = _shown(payload)
            return []
        self.counters["messages"] += 1
        if av:
            self._availability(av, topic, payload)
        samples = self._samples(data or (), msg, topic, payload, now)
        if replayed:
            self.counters["replayed_messages"] += 1
            return [replayed_copy(s) for s in samples]
        return samples

    def _retained_again(self, topic: str, payload: bytes, gen: int) -> bool:
        """True for a retained copy already handled since (re)subscribing: the broker sends one per matching
        filter (exact + discovery)."""
        if gen != self._retained_gen:
            self._retained_gen, self._retained_seen = gen, set()
        key = (topic, hash(payload))
        if key in self._retained_seen:
            return True
        self._retained_seen.add(key)
        return False

    def _availability(self, sensors: Iterable[MqttSensorConfig], topic: str, payload: bytes) -> None:
        for s in sensors:
            try:
                online = parse_online(payload)
            except BadPayload as exc:
                self._bad_payload(topic, exc.reason, payload)
                break
            self.ctx.set_online(s.id, online, f"{topic}: {_shown(payload)[:40]}")

    def _samples(self, sensors: Iterable[MqttSensorConfig], msg: paho.MQTTMessage, topic: str,
                 payload: bytes, now: float | None = None) -> list[Sample]:
        """Each mapped sensor's samples from one data message; a bad payload is noted once per reason."""
        out: list[Sample] = []
        if now is None:
            now = self.ctx.clock.now()
        bad: set[str] = set()
        for s in sensors:
            if msg.retain and not s.use_retained:
                self.counters["retained_skipped"] += 1
                continue
            try:
                samples = parse(topic, payload, s, self.states[s.id], now)
            except PayloadError as exc:
                if exc.reason not in bad:
                    bad.add(exc.reason)
                    self._bad_payload(topic, exc.reason, payload)
                continue
            except Exception:  # a parser bug must not stop the other sensors
                self.counters["parser_errors"] += 1
                if self._once("bug", topic):
                    self.ctx.log.exception("%s: parser %s failed on %s", self.source, s.format, topic)
                continue
            self.last_message[s.id] = now
            vals = self.last_values.get(s.id)
            if vals is None:  # not setdefault: that makes a dict for every message
                vals = self.last_values[s.id] = {}
            for smp in samples:
                vals[smp.quantity] = smp.value if smp.fault is None else f"fault: {smp.fault}"
            out += samples
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "broker": f"{self.mqtt.host}:{self.mqtt.port}",
            "client_id": self.client_id,
            "connected": self.connected,
            "state": self.state,
            "subscriptions": dict(self.subscriptions),
            "sensors": {
                s.id: {"format": s.format, "topics": data_topics(s), "availability": availability_topic(s),
                       "last_message": self.last_message.get(s.id), "last_values": self.last_values.get(s.id, {})}
                for s in self.configs
            },
            "unmapped": dict(self.unmapped),
            "bad_payloads": self.counters["bad_payloads"],
            "bad_payload_reasons": dict(self.bad),
            "counters": dict(self.counters),
        }

    # ------------------------------------------------------------------ probe (coldchain doctor)

    async def probe(self, seconds: float) -> dict[str, Any]:
        """Listen `seconds` on a separate, clean session (never taking the daemon's queued messages);
        report per sensor whether it answered and with what, and the unmapped topics."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        result: dict[str, Any] = {"sensors": {}, "unmapped": {}, "broker": {"connected": False, "detail": ""}}
        heard: dict[str, dict[str, Any]] = {
            s.id: {"answered": False, "values": {}, "detail": "", "messages": 0} for s in self.configs
        }
        states = {s.id: DeviceState(site_timezone=self.site_tz) for s in self.configs}
        retained: set[tuple[str, int]] = set()
        try:
            client = self._make_client(f"{self.client_id}-probe-{os.getpid()}", persistent=False, manual_ack=False)
        except SensorError as exc:
            result["broker"]["detail"] = str(exc)
            result["sensors"] = {k: {"answered": False, "values": {}, "detail": str(exc)} for k in heard}
            return result
        self._wire(client, _poster(loop, queue), 0, acking=False)
        left = seconds
        refused_v5 = False
        try:
            self._connect_async(client, persistent=False)
            client.loop_start()
            deadline = loop.time() + seconds
            while (left := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=left)
                except TimeoutError:
                    break
                if isinstance(item, _Conn):
                    if item.kind == "refused" and item.detail == UNSUPPORTED_PROTOCOL and self.protocol == "5":
                        refused_v5 = True  # a 3.1.1-only broker: listen again with 3.1.1, as run() does
                        break
                    if item.kind == "lost" and result["broker"]["detail"].startswith("refused"):
                        continue  # the refusal (bad password ...) says why; the drop after it does not
                    result["broker"] = {"connected": item.kind == "connected",
                                        "detail": item.detail if item.kind == "connected" else
                                        f"{item.kind}: {item.detail}"}
                    continue
                assert isinstance(item, tuple)
                msg = item[1]
                if msg.retain:  # one retained copy per matching filter: keep the first
                    if (msg.topic, hash(msg.payload)) in retained:
                        continue
                    retained.add((msg.topic, hash(msg.payload)))
                self._probe_message(msg, heard, states, result["unmapped"])
        finally:
            await asyncio.to_thread(self._shutdown, client)
        if refused_v5:
            self.protocol = "3.1.1"
            self._hurry_at = self._early_commit_at()
            result = await self.probe(max(left, 1.0))
            result["broker"]["protocol"] = "3.1.1 (the broker refused MQTT 5)"
            return result
        return self._probe_report(result, heard, seconds)

    def _probe_report(self, result: dict[str, Any], heard: dict[str, dict[str, Any]],
                      seconds: float) -> dict[str, Any]:
        """Each sensor's entry of the probe's result; one that sent nothing says on which topics and why."""
        for sid, h in heard.items():
            cfg = next(s for s in self.configs if s.id == sid)
            if not h["answered"] and not h["detail"]:
                why = result["broker"]["detail"] if not result["broker"]["connected"] else "nothing published"
                h["detail"] = f"no message on {', '.join(data_topics(cfg))} in {seconds:g} s ({why})"
            h.pop("messages")
            result["sensors"][sid] = h
        return result

    def _probe_message(self, msg: paho.MQTTMessage, heard: dict[str, dict[str, Any]],
                       states: dict[str, DeviceState], unmapped: dict[str, str]) -> None:
        topic, payload = msg.topic, bytes(msg.payload)
        data, av = self.routes.get(topic), self.avail.get(topic)
        if (data or av) and self._discovery_copy(msg):
            return
        if not data and not av:
            if topic not in unmapped and len(unmapped) < UNMAPPED_MAX:
                unmapped[topic] = _shown(payload)
            return
        for s in av or ():
            with contextlib.suppress(BadPayload):
                heard[s.id]["online"] = parse_online(payload)
        for s in data or ():
            h = heard[s.id]
            old = " (retained: an old value)" if msg.retain else ""
            try:
                samples = parse(topic, payload, s, states[s.id], self.ctx.clock.now())
            except PayloadError as exc:
                h["detail"] = f"bad payload on {topic}: {exc.reason}: {_shown(payload)[:80]}"
                continue
            except Exception as exc:  # noqa: BLE001 - parser bug: show it to the installer, keep probing
                h["detail"] = f"parser error on {topic}: {exc!r}"
                continue
            h["messages"] += 1
            h["answered"] = True
            faults = [f"{x.quantity}: {x.fault}" for x in samples if x.fault]
            for x in samples:
                h["values"][x.quantity] = x.value
                h.setdefault("units", {})[x.quantity] = x.unit  # the doctor reads a battery in V or mV
            units = ", ".join(f"{x.quantity} {x.value} {x.unit}" for x in samples if x.fault is None)
            h["detail"] = f"{h['messages']} message(s) on {topic}{old}: " + "; ".join(
                [p for p in (units, *faults) if p]) if samples else f"message on {topic}{old}, no value in it"
