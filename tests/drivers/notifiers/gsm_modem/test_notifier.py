"""The gsm_modem notifier against the fake modem on a socat pty pair: PDUs on the wire, replies, reports, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.ports.errors import ConfigError, NotifierError
from daemon.ports.notify import Incoming, Message, NotifierContext
from drivers import load_all
from drivers.notifiers.gsm_modem import SAMPLE_YAML, GsmModemConfig, GsmModemNotifier, signal_dbm
from drivers.notifiers.gsm_modem.at import Urc
from drivers.registry import NOTIFIERS
from tests.conftest import MINIMAL, make_config
from tests.drivers.notifiers.gsm_modem.conftest import PtyPair
from tests.drivers.notifiers.gsm_modem.fake_modem import FakeModem
from tests.drivers.notifiers.gsm_modem.test_pdu import ACK_DELIVER, ALARM_1, ALARM_1_PDU, ALARM_2_PDUS, alarm_2_text

pytestmark = [pytest.mark.peer, pytest.mark.asyncio]

INIT = ["AT", "ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0", 'AT+CPMS="SM","SM","SM"', "AT+CNMI=2,1,0,1,0"]
REPORT_MR1_DELIVERED = "000601" + "0B911326880736F4111011719551401110117195714000"
REPORT_MR2_FAILED = "000602" + "0B911326880736F4111011719551401110117195714065"  # 0x65: validity period expired


class Recorder:
    """A NotifierContext that remembers what reached the core (and what the modem held at that moment)."""

    def __init__(self, modem: FakeModem) -> None:
        self.modem = modem
        self.incoming: list[Incoming] = []
        self.deleted_at_callback: list[list[int]] = []
        self.deliveries: list[tuple[str, bool, str]] = []
        self.ctx = NotifierContext(on_incoming=self._incoming, on_delivery=self._delivery)

    def _incoming(self, msg: Incoming) -> None:
        self.deleted_at_callback.append(list(self.modem.deleted))
        self.incoming.append(msg)

    def _delivery(self, ref: str, delivered: bool, detail: str) -> None:
        self.deliveries.append((ref, delivered, detail))


def make(ptys: PtyPair, ctx: NotifierContext | None = None, **options: Any) -> GsmModemNotifier:
    cfg = GsmModemConfig.model_validate({
        "id": "sms", "type": "gsm_modem", "port": str(ptys.client_end), "command_timeout": 0.5,
        "send_timeout": 3, "reset_wait": 0.1, "reopen_backoff": 0.05, "reopen_backoff_max": 0.4,
        "health_interval": 3600, **options,
    })
    return GsmModemNotifier(cfg, ctx)


def msg(text: str, outbox_id: int = 1) -> Message:
    return Message(outbox_id, 17, "zhang", "+8613800138000", text, "zh-CN")


async def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until `pred()`; the deadline only bounds a hang, it asserts nothing about speed."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(notifier: GsmModemNotifier) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(notifier.run())
    try:
        await eventually(lambda: notifier.ready, what="modem ready")
        # the start-up scan of the SIM is done, so a later +CMTI is what reads a new message
        await eventually(lambda: notifier.counts["scans"] >= 1, what="start-up scan")
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await notifier.close()


async def test_registered_and_sample_matches_defaults() -> None:
    load_all()
    assert NOTIFIERS["gsm_modem"] is GsmModemNotifier
    [entry] = yaml.safe_load(SAMPLE_YAML)
    assert GsmModemConfig.model_validate(entry) == GsmModemConfig(id="sms", type="gsm_modem")
    with pytest.raises(ValueError, match="baud"):
        GsmModemConfig.model_validate({"id": "m", "type": "gsm_modem", "baud": 9600})
    assert [signal_dbm(r) for r in (0, 21, 31, 99)] == [-113, -71, -51, None]


async def test_init_sequence_and_health(ptys: PtyPair, modem: FakeModem) -> None:
    n = make(ptys)
    try:
        health = await n.health()
    finally:
        await n.close()
    assert modem.commands[: len(INIT)] == INIT
    assert health["state"] == "ready"
    assert health["registered"] is True
    assert health["registration"] == {"creg": "home", "cereg": "home"}
    assert (health["signal_dbm"], health["operator"]) == (-71, "CHINA MOBILE")
    assert health["sim_storage"] == {"used": 0, "total": 30}


async def test_chinese_alarm_single_part_pdu_on_the_wire(ptys: PtyPair, modem: FakeModem) -> None:
    """The PROTOCOLS vector exactly: UCS2, SRR, TP-MR/reference from the outbox id, no validity period."""
    n = make(ptys, validity=None)
    try:
        ref = await n.send(msg(ALARM_1, outbox_id=1))
    finally:
        await n.close()
    assert modem.sent == [(80, ALARM_1_PDU)]
    assert ref == "1"


async def test_chinese_alarm_two_parts_pdu_on_the_wire(ptys: PtyPair, modem: FakeModem) -> None:
    n = make(ptys, validity=None)
    try:
        ref = await n.send(msg(alarm_2_text(), outbox_id=0x2A))
    finally:
        await n.close()
    assert modem.sent == [(154, ALARM_2_PDUS[0]), (82, ALARM_2_PDUS[1])]
    assert ref == "1,2"


async def test_default_config_adds_validity_24h(ptys: PtyPair, modem: FakeModem) -> None:
    """FO 0x31 (VPF relative) and TP-VP 0xA7 (24 h) before the UDL; the rest is the vector's."""
    n = make(ptys)
    try:
        await n.send(msg(ALARM_1, outbox_id=1))
    finally:
        await n.close()
    expected = "0031010D91683108108300F00008A742" + ALARM_1_PDU[len("0021010D91683108108300F0000842"):]
    assert modem.sent == [(81, expected)]


async def test_cmgs_error_raises_notifier_error_naming_the_port(ptys: PtyPair, modem: FakeModem) -> None:
    modem.cmgs_error = True
    n = make(ptys)
    try:
        with pytest.raises(NotifierError, match=r"\+CMS ERROR: 500") as info:
            await n.send(msg("ALARM room1"))
    finally:
        await n.close()
    assert str(ptys.client_end) in str(info.value)
    assert info.value.source == "gsm_modem:sms"


async def test_bad_address_is_a_notifier_error(ptys: PtyPair, modem: FakeModem) -> None:
    with pytest.raises(NotifierError, match="not a phone number"):
        await make(ptys).send(Message(3, None, "li", "li@example.com", "hi", "en"))
    assert modem.sent == []


async def test_ack_reply_reaches_the_core_then_is_deleted(ptys: PtyPair, modem: FakeModem) -> None:
    rec = Recorder(modem)
    n = make(ptys, rec.ctx)
    async with running(n):
        index = modem.deliver(ACK_DELIVER)
        await eventually(lambda: index in modem.deleted, what="AT+CMGD")
    [incoming] = rec.incoming
    assert (incoming.sender, incoming.text, incoming.channel) == ("+8613800138000", "ACK 收到", "sms")
    assert incoming.ts == 1732240800.0  # 2024-11-22 10:00:00 +08:00 from the SCTS
    assert rec.deleted_at_callback == [[]]  # not deleted before the core had it
    assert f"AT+CMGR={index}" in modem.commands


async def test_replies_stored_while_the_daemon_was_down_are_read_at_start(ptys: PtyPair, modem: FakeModem) -> None:
    modem.storage[5] = (0, ACK_DELIVER)
    rec = Recorder(modem)
    async with running(make(ptys, rec.ctx)):
        await eventually(lambda: 5 in modem.deleted, what="stored reply deleted")
    assert [m.text for m in rec.incoming] == ["ACK 收到"]


async def test_callback_failure_keeps_the_sms_on_the_sim(ptys: PtyPair, modem: FakeModem) -> None:
    def broken(_m: Incoming) -> None:
        raise RuntimeError("journal locked")

    n = make(ptys, NotifierContext(on_incoming=broken))
    async with running(n):
        index = modem.deliver(ACK_DELIVER)
        await eventually(lambda: n.counts["incoming_errors"] == 1, what="callback failure")
        await n.health()  # one more command round trip: a CMGD would have been answered before it
    assert index not in modem.deleted and index in modem.storage


async def test_delivery_reports_reach_on_delivery(ptys: PtyPair, modem: FakeModem) -> None:
    rec = Recorder(modem)
    n = make(ptys, rec.ctx)
    async with running(n):
        assert await n.send(msg("ALARM room1 T=12.5C")) == "1"
        modem.status_report(REPORT_MR1_DELIVERED)
        await eventually(lambda: len(rec.deliveries) == 1, what="first report")
        assert await n.send(msg("ALARM room2", outbox_id=2)) == "2"
        modem.status_report(REPORT_MR2_FAILED)
        await eventually(lambda: len(rec.deliveries) == 2, what="second report")
    (ref1, ok1, detail1), (ref2, ok2, detail2) = rec.deliveries
    assert (ref1, ok1) == ("1", True) and "delivered" in detail1
    assert (ref2, ok2) == ("2", False) and "validity period expired" in detail2


async def test_two_part_message_reports_once_when_both_parts_are_delivered(ptys: PtyPair, modem: FakeModem) -> None:
    rec = Recorder(modem)
    n = make(ptys, rec.ctx)
    async with running(n):
        assert await n.send(msg(alarm_2_text(), outbox_id=9)) == "1,2"
        modem.status_report(REPORT_MR1_DELIVERED)
        modem.status_report("000602" + REPORT_MR1_DELIVERED[6:])
        await eventually(lambda: len(rec.deliveries) == 1, what="combined report")
        await n.health()
    [(ref, delivered, detail)] = rec.deliveries
    assert (ref, delivered) == ("1,2", True) and "2/2 parts" in detail


async def test_silent_modem_times_out_then_is_reset_and_recovers(ptys: PtyPair, modem: FakeModem) -> None:
    n = make(ptys, max_timeouts=1)
    async with running(n):
        modem.hung = True
        with pytest.raises(NotifierError, match="prompt") as info:
            await asyncio.wait_for(n.send(msg("ALARM room1")), 10)
        assert str(ptys.client_end) in str(info.value)
        assert not info.value.maybe_sent  # no prompt, no PDU: the modem cannot have sent it; retry is safe
        await eventually(lambda: n.counts["resets"] == 1 and n.ready, what="reset and re-initialised")
        assert modem.boots == 1  # AT+CFUN=1,1 got through
        assert await n.send(msg("ALARM room1", outbox_id=2)) == "1"
        health = await n.health()
    assert health["state"] == "ready"
    assert n.counts["resets"] == 1 and n.counts["timeouts"] >= 1
    assert modem.commands.count("ATE0") == 2  # initialised again after the reboot turned echo back on


async def test_modem_silent_after_taking_the_pdu_may_have_sent_it(ptys: PtyPair, modem: FakeModem) -> None:
    """The PDU went out after the prompt and no +CMGS/OK came back: the network may deliver it, so the outbox
    must not send it again on this channel (before: a plain retryable error, resent after the reset)."""
    n = make(ptys, max_timeouts=1)
    async with running(n):
        modem.hang_after_submit = True
        with pytest.raises(NotifierError, match="no final result code") as info:
            await asyncio.wait_for(n.send(msg("ALARM room1")), 10)
        assert info.value.maybe_sent and "may have sent it" in str(info.value)
        assert len(modem.sent) == 1
        await eventually(lambda: n.counts["resets"] == 1 and n.ready, what="reset and re-initialised")
        assert await n.send(msg("ALARM room2", outbox_id=2)) == "2"


async def test_run_ends_when_cancelled_as_a_modem_event_arrives(ptys: PtyPair, modem: FakeModem) -> None:
    """Daemon.stop() cancels run(). An event queued in the same loop pass (a reset request, a URC) made Python
    3.11's asyncio.wait_for swallow the cancel: run() went on forever and the daemon never finished stopping."""
    n = make(ptys)
    task = asyncio.create_task(n.run())
    try:
        await eventually(lambda: n.ready and n.counts["scans"] >= 1, what="modem ready")
        await eventually(lambda: bool(n._events._getters), what="run() waiting for events")  # type: ignore[attr-defined]
        n._events.put_nowait(Urc("RING"))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done and task.cancelled(), "the cancel was swallowed: run() is still going"
    finally:
        await n.close()


async def test_unplugged_modem_is_reopened_with_backoff(ptys: PtyPair, modem: FakeModem) -> None:
    n = make(ptys)
    async with running(n):
        modem.stop()
        ptys.stop()  # the ttyUSB device disappears
        await eventually(lambda: not n.ready, what="port loss noticed")
        with pytest.raises(NotifierError, match=r"not ready|not open"):
            await n.send(msg("ALARM room1"))
        ptys.start()  # plugged back in
        replugged = FakeModem(str(ptys.modem_end)).start()
        try:
            await eventually(lambda: n.ready, what="reopened")
            assert await n.send(msg("ALARM room1", outbox_id=2)) == "1"
            health = await n.health()
        finally:
            replugged.stop()
    assert health["reopens"] == 1
    assert replugged.commands[: len(INIT)] == INIT


async def test_sim_pin_from_pin_file(ptys: PtyPair, modem: FakeModem, tmp_path: Path) -> None:
    modem.pin = "4321"
    pin_file = tmp_path / "sim.pin"
    pin_file.write_text("4321\n")
    n = make(ptys, pin_file=str(pin_file))
    try:
        assert await n.send(msg("test")) == "1"
    finally:
        await n.close()
    assert 'AT+CPIN="4321"' in modem.commands


async def test_sim_pin_missing_is_a_clear_error(ptys: PtyPair, modem: FakeModem) -> None:
    modem.pin = "4321"
    n = make(ptys)
    with pytest.raises(NotifierError, match="asks for a PIN but no pin_file") as info:
        await n.send(msg("test"))
    assert str(ptys.client_end) in str(info.value)
    health = await n.health()
    assert health["state"] == "down" and "PIN" in str(health["last_error"])


async def test_not_registered_shows_in_health(ptys: PtyPair, modem: FakeModem) -> None:
    modem.creg, modem.cereg, modem.csq = "0,2", "0,3", "99,99"
    n = make(ptys)
    try:
        health = await n.health()
    finally:
        await n.close()
    assert health["registered"] is False
    assert health["registration"] == {"creg": "searching", "cereg": "denied"}
    assert health["signal_dbm"] is None


async def test_app_config_accepts_a_gsm_modem_entry(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - {id: out, type: console}",
                           "  - {id: sms, type: gsm_modem, port: /dev/ttyUSB2, validity: 12h, xonxoff: true}")
    cfg = make_config(tmp_path, text)
    [entry] = cfg.notifiers
    assert isinstance(entry, GsmModemConfig)
    assert (entry.validity, entry.xonxoff) == (43200.0, True)
    with pytest.raises(ConfigError, match="baudrate"):
        make_config(tmp_path, text.replace("validity: 12h", "baudrate: 1234"))


async def test_hung_modem_is_found_by_the_health_check_without_any_send(ptys: PtyPair, modem: FakeModem) -> None:
    n = make(ptys, health_interval=0.2, max_timeouts=2)
    async with running(n):
        modem.hung = True
        await eventually(lambda: modem.boots == 1, what="reset after health-check timeouts")
        await eventually(lambda: n.ready and n.counts["resets"] == 1, what="ready again")
        assert await n.send(msg("ALARM room1")) == "1"


def deliver_part(text: str, ref: int, total: int, seq: int) -> str:
    """An SMS-DELIVER from +8613800138000, UCS2, with an 8-bit concatenation UDH (FO 0x44: UDHI)."""
    ud = bytes([5, 0, 3, ref, total, seq]) + text.encode("utf-16-be")
    return ("00440D91683108108300F0000842112201000023" + f"{len(ud):02X}" + ud.hex()).upper()


async def test_multi_part_reply_is_joined_then_all_parts_deleted(ptys: PtyPair, modem: FakeModem) -> None:
    rec = Recorder(modem)
    async with running(make(ptys, rec.ctx)):
        second = modem.deliver(deliver_part("已处理，压缩机复位", 7, 2, 2))  # parts may arrive out of order
        first = modem.deliver(deliver_part("ACK 17 ", 7, 2, 1))
        await eventually(lambda: {first, second} <= set(modem.deleted), what="both parts deleted")
    assert [m.text for m in rec.incoming] == ["ACK 17 已处理，压缩机复位"]
    assert rec.deleted_at_callback == [[]]


async def test_reply_with_a_part_missing_is_handed_over_after_the_timeout(ptys: PtyPair, modem: FakeModem) -> None:
    rec = Recorder(modem)
    n = make(ptys, rec.ctx, partial_reply_timeout=0.3, health_interval=0.1)
    async with running(n):
        index = modem.deliver(deliver_part("ACK 17 ", 9, 2, 1))
        await eventually(lambda: index in modem.deleted, what="orphan part handed over and deleted")
    assert [m.text for m in rec.incoming] == ["ACK 17 …"]
