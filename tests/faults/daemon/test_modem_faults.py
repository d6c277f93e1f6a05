"""The GSM modem fails under the whole daemon while alarms fire; everything else keeps working and no SMS
is lost or sent twice through the modem.

One daemon reads an MQTT sensor (real Mosquitto; it drives the alarms) and a simulated one, journals them,
forwards them to a real InfluxDB 1.6.7, and sends alarms through the `gsm_modem` channel to the fake modem
(`tests/drivers/notifiers/gsm_modem/fake_modem.py`) on a socat pty pair. The modem then:

1. stops answering AT at all (not even `AT+CFUN=1,1`) as an alarm fires, and comes back later;
2. takes an alarm's PDU and then stops answering (the network may deliver it), and is reset;
3. vanishes (USB unplugged) as an alarm fires, and is plugged back under the same name;
4. vanishes right after taking an alarm's PDU, and is plugged back.

In each phase: readings keep being journaled and forwarded, the alarm is stored, and its message either
reaches the person through the next channel (`test_..._fallback`: a console channel) or waits for the modem
and goes out once it is back (`test_..._modem_only`); a message the modem may have taken is marked
`unknown` and never sent through the modem again. After each phase the modem channel recovers and the
next alarm goes out through it. `COLDCHAIN_LONG=1` repeats the four phases 5 times.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.ports.notify import Notifier
from daemon.storage.outbox import OutboxRow
from drivers.notifiers.gsm_modem import GsmModemNotifier
from drivers.notifiers.gsm_modem.pdu import Submit, decode
from tests.conftest import make_config
from tests.drivers.notifiers.gsm_modem.conftest import PtyPair
from tests.drivers.notifiers.gsm_modem.fake_modem import FakeModem
from tests.drivers.sensors.mqtt.conftest import Broker
from tests.drivers.sensors.mqtt.test_driver import mqtt_driver, uid, until
from tests.peers import InfluxD

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]
ROUNDS = 5 if os.environ.get("COLDCHAIN_LONG") == "1" else 1

CONFIG = """
site: {{id: modem, name: 短信故障}}
storage: {{journal: journal.db, flush_interval: 0.05, commit_interval: 0.05}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, client_id: "{client}"}}
zones:
  - id: z1
    name: 1号库
    commodity: mandarin
    alarms: {{temperature: {{high: 8.0, delay: 0s, clear_delay: 0s}}, no_data: false}}
sensors:
  - {{id: mq, zone: z1, type: mqtt, format: json, topic: "{topic}", values: {{temperature: t}}}}
  - {{id: sim, zone: z1, type: simulated, setpoint: 6.5, interval: 0.5, seed: 1}}
sinks:
  - {{id: central, type: influxdb1, url: "{influx}", database: {db}, batch_size: 50, timeout: 2}}
notifiers:
  - {{id: sms, type: gsm_modem, port: "{tty}", command_timeout: 1s, send_timeout: 3s, max_timeouts: 2,
     reset_wait: 0.2s, reopen_backoff: 0.1s, reopen_backoff_max: 0.5s, health_interval: 1s}}
  - {{id: out, type: console, stream: log}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
escalation:
  steps:
    - {{after: 0m, contacts: [zhang], notifiers: [{channels}]}}
  retry_after: 0.5s
  max_attempts: 100
api: {{enabled: false}}
"""


@dataclass
class Rig:
    """The daemon, the broker topic that drives its alarms, and every fake modem plugged in so far."""

    d: Daemon
    broker: Broker
    topic: str
    pair: PtyPair
    modems: list[FakeModem] = field(default_factory=list)

    @property
    def modem(self) -> FakeModem:
        return self.modems[-1]

    @property
    def sms(self) -> GsmModemNotifier:
        n = self.d.notifiers["sms"]
        assert isinstance(n, GsmModemNotifier)
        return n

    def plug(self) -> None:
        """The modem (re)appears at the same device name."""
        self.pair.start()
        self.modems.append(FakeModem(str(self.pair.modem_end)).start())

    def unplug(self) -> None:
        self.modem.stop()
        self.pair.stop()

    def texts(self) -> Counter[str]:
        """How often each text reached a modem (every modem ever plugged in)."""
        got: Counter[str] = Counter()
        for m in self.modems:
            for _, pdu_hex in list(m.sent):
                sub = decode(pdu_hex)
                assert isinstance(sub, Submit) and sub.concat is None, sub  # alarm texts fit in one SMS
                got[sub.text] += 1
        return got

    def rows(self, aid: int, key: str = "alert.temp_high") -> list[OutboxRow]:
        return [r for r in self.d.journal.outbox.find(alert_id=aid, limit=1000) if r.msg_key == key]

    def row(self, aid: int, notifier: str, key: str = "alert.temp_high") -> OutboxRow | None:
        return next((r for r in self.rows(aid, key) if r.notifier == notifier), None)

    async def publish(self, value: float) -> None:
        await asyncio.to_thread(self.broker.publish, self.topic, f'{{"t": {value}}}')

    async def fire(self, what: str) -> int:
        """A new temperature alarm on the MQTT sensor; returns its id once it is stored."""
        before = {a.id for a in self.d.journal.alerts.find(limit=100_000)}
        await self.publish(9.5)
        (aid,) = await until(lambda: [a.id for a in self.d.journal.alerts.find(limit=100_000)
                                      if a.id not in before and a.kind == "temp_high" and a.sensor == "mq"],
                             f"an alarm stored while {what}")
        return aid

    async def resolve(self, aid: int, what: str) -> None:
        await self.publish(6.5)
        await until(lambda: (a := self.d.journal.alerts.get(aid)) is not None and a.state == "resolved",
                    f"alarm {aid} resolved while {what}")

    async def keeps_flowing(self, what: str) -> None:
        """Readings of both sensors are journaled, and the forwarder confirms new ones, during the fault."""
        n_sim = len(self.d.journal.readings.query(sensor="sim", limit=1_000_000))
        n_mq = len(self.d.journal.readings.query(sensor="mq", limit=1_000_000))
        last = self.d.journal.readings.max_id()
        for _ in range(3):
            await self.publish(6.5)
        await until(lambda: len(self.d.journal.readings.query(sensor="sim", limit=1_000_000)) >= n_sim + 3,
                    f"simulated readings journaled while {what}")
        await until(lambda: len(self.d.journal.readings.query(sensor="mq", limit=1_000_000)) >= n_mq + 3,
                    f"MQTT readings journaled while {what}")
        await until(lambda: self.d.journal.cursors.get("sink:central") >= last, f"readings forwarded while {what}")

    async def through_the_modem(self, what: str) -> None:
        """The modem channel is back: a new alarm goes out through it (and nowhere else)."""
        await until(lambda: self.sms.ready, f"the modem channel ready {what}", timeout=30)
        aid = await self.fire(what)
        await until(lambda: (r := self.row(aid, "sms")) is not None and r.state == "sent",
                    f"alarm {aid} sent through the modem {what}")
        assert [r.notifier for r in self.rows(aid)] == ["sms"]
        assert self.texts()[self.row(aid, "sms").text] == 1  # type: ignore[union-attr]
        await self.resolve(aid, what)
        await until(lambda: (r := self.row(aid, "sms", "resolve")) is not None and r.state == "sent",
                    f"the resolve notice of alarm {aid} sent through the modem {what}")


@asynccontextmanager
async def daemon(tmp_path: Path, broker: Broker, influxd: InfluxD, db: str, pair: PtyPair,
                 channels: str) -> AsyncIterator[Rig]:
    topic = f"faults/modem/{uid()}"
    cfg = make_config(tmp_path, CONFIG.format(mqtt_port=broker.port, client=f"modem-{uid()}", topic=topic,
                                              influx=influxd.url, db=db, tty=pair.client_end, channels=channels))
    rig = Rig(Daemon(cfg, clock=Clock()), broker, topic, pair)
    rig.modems.append(FakeModem(str(pair.modem_end)).start())
    rig.d.forwarders[0].poll_interval = 0.2
    await rig.d.start()
    try:
        await until(lambda: mqtt_driver(rig.d).connected, "the MQTT connection")
        for _ in range(100):  # the subscription may lag the connection by a moment: publish until one lands
            await rig.publish(6.5)
            if rig.d.journal.readings.query(sensor="mq", limit=1):
                break
            await asyncio.sleep(0.2)
        await rig.through_the_modem("at start")
        yield rig
        # the daemon never stopped working: no task ended (but the console channels', which have no loop),
        # no driver crashed, no core loop failed
        loopless = {n.source for n in rig.d.notifiers.values() if type(n).run is Notifier.run}
        assert [t.get_name() for t in rig.d._tasks if t.done() and t.get_name() not in loopless] == []
        assert rig.d.stats.get("driver_crashes") == rig.d.stats.get("task_errors") == 0
    finally:
        await rig.d.stop()
        for m in rig.modems:
            m.stop()
    # InfluxDB holds every journaled reading, each once
    stored = {(r.sensor, round(r.ts * 1000)) for r in rig.d.journal.readings.query(limit=1_000_000)
              if r.quantity == "temperature" and r.value is not None}
    got = {(p["sensor"], p["time"]) for p in influxd.points(db, "readings") if p.get("temperature") is not None}
    assert got == stored


async def silent_modem_phase(rig: Rig, expect: Callable[[int, str], object]) -> int:
    """1. The modem answers nothing (the reset does not help either) while an alarm fires."""
    resets = rig.sms.counts["resets"]
    rig.modem.hung = rig.modem.deaf = True
    aid = await rig.fire("the modem is silent")
    await until(lambda: rig.sms.counts["resets"] > resets and not rig.sms.ready, "the silent modem reset")
    await rig.keeps_flowing("the modem is silent")
    await until(lambda: expect(aid, "the modem is silent"), f"alarm {aid} handled while the modem is silent")
    rig.modem.hung = rig.modem.deaf = False  # power comes back
    return aid


async def took_then_silent_phase(rig: Rig) -> int:
    """2. The modem takes the PDU, then answers nothing until the daemon resets it."""
    resets = rig.sms.counts["resets"]
    rig.modem.hang_after_submit = True
    aid = await rig.fire("the modem took the PDU and went silent")
    await until(lambda: (r := rig.row(aid, "sms")) is not None and r.state == "unknown",
                f"alarm {aid} marked unknown on the modem")
    await rig.keeps_flowing("the modem is silent after taking a PDU")
    await until(lambda: rig.sms.counts["resets"] > resets, "the modem reset after it stopped answering")
    return aid


async def unplugged_phase(rig: Rig, expect: Callable[[int, str], object]) -> int:
    """3. The modem's serial device vanishes while an alarm fires."""
    rig.unplug()
    await until(lambda: not rig.sms.ready, "the daemon noticing the modem gone")
    aid = await rig.fire("the modem is unplugged")
    await rig.keeps_flowing("the modem is unplugged")
    await until(lambda: expect(aid, "the modem is unplugged"), f"alarm {aid} handled while the modem is unplugged")
    rig.plug()
    return aid


async def unplugged_after_pdu_phase(rig: Rig) -> int:
    """4. The modem takes the PDU and its device vanishes before it answers."""
    rig.modem.on_submit = rig.pair.stop  # from the modem's own thread, as the USB link drops
    aid = await rig.fire("the modem vanished after taking the PDU")
    await until(lambda: (r := rig.row(aid, "sms")) is not None and r.state == "unknown",
                f"alarm {aid} marked unknown after the port vanished")
    await rig.keeps_flowing("the modem vanished after taking a PDU")
    rig.modems[-1].stop()
    rig.plug()
    return aid


async def test_modem_failures_with_a_fallback_channel(tmp_path: Path, broker: Broker, influxd: InfluxD,
                                                      influx_db: str, ptys: PtyPair) -> None:
    async with daemon(tmp_path, broker, influxd, influx_db, ptys, "sms, out") as rig:
        def handed_over(aid: int, what: str) -> bool:
            """The modem channel failed it (not taken), the console channel sent it."""
            sms, out = rig.row(aid, "sms"), rig.row(aid, "out")
            return sms is not None and sms.state == "failed" and out is not None and out.state == "sent"

        failed, unknown = [], []
        for _ in range(ROUNDS):
            failed.append(await silent_modem_phase(rig, handed_over))
            await rig.through_the_modem("after the silent modem came back")
            unknown.append(await took_then_silent_phase(rig))
            await rig.through_the_modem("after the reset")
            failed.append(await unplugged_phase(rig, handed_over))
            await rig.through_the_modem("after the modem was plugged back")
            unknown.append(await unplugged_after_pdu_phase(rig))
            await rig.through_the_modem("after the modem was plugged back again")

        out = rig.d.notifiers["out"]
        for aid in failed + unknown:
            sms, console = rig.row(aid, "sms"), rig.row(aid, "out")
            assert sms is not None and console is not None and console.state == "sent"
            assert console.id in {m.outbox_id for m in out.sent}  # type: ignore[attr-defined]
            times = rig.texts()[sms.text]
            if aid in failed:  # the modem never had it: not on the modem, given to the next channel
                assert (sms.state, times) == ("failed", 0), (aid, sms)
            else:  # the modem took it: once, never again on the modem, also given to the next channel
                assert (sms.state, times) == ("unknown", 1), (aid, sms)
                assert "may have sent it" in (sms.last_error or "")
    assert max(rig.texts().values()) == 1, "a text reached the modem twice"


async def test_modem_failures_without_a_fallback_channel(tmp_path: Path, broker: Broker, influxd: InfluxD,
                                                         influx_db: str, ptys: PtyPair) -> None:
    async with daemon(tmp_path, broker, influxd, influx_db, ptys, "sms") as rig:
        def waits(aid: int, what: str) -> bool:
            """No other channel: the message stays pending on the modem channel, retried with backoff."""
            sms = rig.row(aid, "sms")
            return sms is not None and sms.state == "pending" and sms.attempts >= 1

        async def sent_once(aid: int, what: str) -> None:
            await until(lambda: (r := rig.row(aid, "sms")) is not None and r.state == "sent",
                        f"alarm {aid} sent by the modem {what}", timeout=30)
            assert rig.texts()[rig.row(aid, "sms").text] == 1  # type: ignore[union-attr]

        unknown = []
        for _ in range(ROUNDS):
            aid = await silent_modem_phase(rig, waits)
            await sent_once(aid, "after the silent modem came back")
            await rig.through_the_modem("after the silent modem came back")
            unknown.append(await took_then_silent_phase(rig))
            await rig.through_the_modem("after the reset")
            aid = await unplugged_phase(rig, waits)
            await sent_once(aid, "after the modem was plugged back")
            await rig.through_the_modem("after the modem was plugged back")
            unknown.append(await unplugged_after_pdu_phase(rig))
            await rig.through_the_modem("after the modem was plugged back again")

        for aid in unknown:  # the modem took it: never resent, although later alarms went out through it
            (row,) = rig.rows(aid)
            assert (row.state, row.next_try, rig.texts()[row.text]) == ("unknown", None, 1), row
    assert max(rig.texts().values()) == 1, "a text reached the modem twice"
