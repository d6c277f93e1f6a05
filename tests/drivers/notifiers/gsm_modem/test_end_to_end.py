"""Issue 5 end to end: a simulated compressor failure -> the SMS PDU reaches the modem on the pty
after the delay -> the staff reply `ACK 收到` -> the alarm is acknowledged with the sender recorded
-> a resolve notice goes out when the room recovers. Real daemon, real notifier, fake modem on socat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from drivers.notifiers.gsm_modem.pdu import Submit, decode
from tests.conftest import make_config
from tests.drivers.notifiers.gsm_modem.conftest import PtyPair
from tests.drivers.notifiers.gsm_modem.fake_modem import FakeModem

# PROTOCOLS.md 3.2: SMS-DELIVER (UCS2) "ACK 收到" from +8613800138000
ACK_FROM_ZHANG = "00040D91683108108300F00008421122010000230C00410043004B002065365230"

CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: journal.db}}
zones:
  - {{id: z2, name: 2号库, commodity: mandarin}}
sensors:
  - id: m1
    zone: z2
    type: simulated
    interval: 1m
    setpoint: 6.5
    noise: 0.01
    failures: [{{kind: compressor, at: 1m, until: 40m}}]
notifiers:
  - {{id: sms, type: gsm_modem, port: {port}, health_interval: 1h, command_timeout: 3s}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
escalation:
  steps:
    - {{after: 0m, contacts: [zhang], notifiers: [sms]}}
api: {{enabled: false}}
"""


def texts(modem: FakeModem) -> list[str]:
    out = []
    for _, pdu in list(modem.sent):
        sub = decode(pdu)
        assert isinstance(sub, Submit) and sub.number == "+8613800138000"
        out.append(sub.text)
    return out


async def until(cond, what: str, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.peer
@pytest.mark.asyncio
async def test_compressor_failure_sms_ack_by_reply_and_resolve(
    ptys: PtyPair, modem: FakeModem, tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, CONFIG.format(port=ptys.client_end))
    d = Daemon(cfg, clock=Clock(speed=240))  # 4 simulated minutes a second
    await d.start()
    try:
        await until(lambda: any("【冷库告警】" in t for t in texts(modem)), "the alarm SMS on the modem")
        (alarm,) = [a for a in d.journal.alerts.find() if a.state == "firing"]
        first = texts(modem)[0]
        assert first.startswith("【冷库告警】测试冷库2号库温度") and f"回复ACK {alarm.id}确认" in first
        assert alarm.fired is not None and alarm.fired - alarm.started >= 600  # not before the 10 min delay

        # the network confirms delivery of the alarm SMS: +CDS with its message reference
        (first_row,) = d.journal.outbox.find(alert_id=alarm.id)
        mr = int(str(first_row.ref).split(",")[0])
        modem.status_report(f"0006{mr:02X}0D91683108108300F0111011719551401110117195714000")
        await until(lambda: d.journal.outbox.delivery(first_row.id)[0] == 1, "the delivery report on the alarm message")

        modem.deliver(ACK_FROM_ZHANG)  # the reply arrives: +CMTI, then the notifier reads it
        await until(lambda: (a := d.journal.alerts.get(alarm.id)) is not None and a.state == "acknowledged",
                    "the alarm acknowledged by the SMS reply")
        acked = d.journal.alerts.get(alarm.id)
        assert acked is not None and acked.acked_by == "zhang"
        assert d.journal.alerts.events(alarm.id)[-1][2] == "zhang (SMS +8613800138000)"
        await until(lambda: any(t.startswith("已确认告警") for t in texts(modem)), "the confirmation reply")
        assert modem.deleted, "the reply was deleted from the SIM after it was handled"

        await until(lambda: any(t.startswith("【恢复】") for t in texts(modem)), "the resolve notice", 90)
        resolved = d.journal.alerts.get(alarm.id)
        assert resolved is not None and resolved.state == "resolved"
        assert [e[1] for e in d.journal.alerts.events(alarm.id)] == ["pending", "firing", "acknowledged", "resolved"]
        sent = d.journal.outbox.find(alert_id=alarm.id)
        assert [o.msg_key for o in sent] == ["alert.temp_high", "ack.reply", "resolve"]
        # the modem has the text before its +CMGS answer is journaled: wait for the reference, do not race it
        await until(lambda: all(o.state == "sent" and o.ref for o in d.journal.outbox.find(alert_id=alarm.id)),
                    "each message marked sent with the modem's reference")
    finally:
        await d.stop()
