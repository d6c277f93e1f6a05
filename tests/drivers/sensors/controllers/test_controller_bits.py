"""A controller whose defrost state is a coil (FC01) and whose alarm is a discrete input (FC02), as many
cold-room controllers map them, beside its probe in a holding register: read from pymodbus's servers over
TCP (both framings) and over an RS485 pty in a running daemon, plus the map's checks and the bit frames."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from daemon.app.plugins import parse_config
from daemon.app.runtime import Daemon
from drivers.sensors.modbus_rtu import Read, plan_reads
from drivers.sensors.modbus_rtu.schema import RegisterMap
from drivers.sensors.modbus_tcp import frames
from tests.drivers.sensors.conftest import PtyPair
from tests.drivers.sensors.controllers.test_controller_peer import CONFIG as PRESET_CONFIG
from tests.drivers.sensors.modbus_rtu.test_peer import ModbusPeer
from tests.drivers.sensors.modbus_tcp.conftest import Gateway, gateways  # noqa: F401  (the fixture)
from tests.peers import until

DEFROST_COIL, ALARM_INPUT = 3, 1
REGISTERS = ("registers: {temperature: {register: 0, divisor: 10, signed: true}, "
             f"defrost: {{register: {DEFROST_COIL}, function_code: 1}}, "
             f"controller_alarm: {{register: {ALARM_INPUT}, function_code: 2}}}}")
# the preset test's daemon config, with this map instead of the preset
CONFIG = PRESET_CONFIG.replace("id: xr1", "id: c1").replace("preset: example_controller", "{registers}")
SPEC = {"1": {"hr": [60], "ir": [0, 0], "co": [0, 0, 0, 0], "di": [0, 0]}}  # 6.0 °C, no defrost, no alarm


def regmap(registers: dict[str, object]) -> RegisterMap:
    return RegisterMap.model_validate({"registers": registers})


def test_each_function_code_is_its_own_request() -> None:
    m = regmap({"temperature": {"register": 0}, "humidity": {"register": 1},
                "defrost": {"register": 0, "function_code": 1}, "controller_alarm": {"register": 1, "function_code": 1}})
    assert plan_reads(m) == [Read(0, 2, ("defrost", "controller_alarm"), 1), Read(0, 2, ("temperature", "humidity"), 3)]
    assert Read(3, 1, ("defrost",), 1).where == "FC01 0x0003+1"


@pytest.mark.parametrize(("registers", "message"), [
    ({"temperature": {"register": 0, "function_code": 1}}, "holds a state"),
    ({"defrost": {"register": 0, "function_code": 2, "bit": 1}}, "is one bit"),
    ({"controller_alarm": {"register": 0, "function_code": 1, "words": 2}}, "is one bit"),
])
def test_a_bit_is_for_states_only(registers: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        regmap(registers)


def test_bit_replies_unpack_lowest_bit_first() -> None:
    # FC01, 10 bits: 0b0000_1010 then 0b10 -> bits 1, 3 and 9 set (the spec's packing, low bit first)
    assert frames._words(1, bytes([1, 2, 0x0A, 0x02]), 10) == [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]
    with pytest.raises(frames.BadFrame):
        frames._words(2, bytes([2, 2, 0x01]), 3)  # says 2 bytes for 3 bits


def values(d: Daemon, quantity: str) -> list[float | None]:
    return [r.value for r in d.journal.readings.query(sensor="c1", quantity=quantity)]


@pytest.mark.peer
@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["tcp", "rtu"])
async def test_the_defrost_coil_mutes_and_the_alarm_input_pages(gateways: Callable[..., Gateway],  # noqa: F811
                                                                 framing: str, tmp_path: Path) -> None:
    gw = gateways(framing, SPEC)
    where = f"host: 127.0.0.1, tcp_port: {gw.port}, unit_id: 1, framing: {framing}"
    cfg = parse_config(CONFIG.format(tmp=tmp_path, type="modbus_tcp", where=where, registers=REGISTERS), "c.yaml")
    # the test writes the device's bits over Modbus TCP; with RTU framing the gateway speaks RTU on TCP
    client = ModbusTcpClient("127.0.0.1", port=gw.port) if framing == "tcp" else None
    d = Daemon(cfg)
    await d.start()
    try:
        await until(lambda: values(d, "defrost") == [0.0] and values(d, "controller_alarm") == [0.0], "the first poll")
        assert 6.0 in values(d, "temperature")
        if client is None:
            return  # the RTU framing read all three; the state changes are the TCP case's
        assert client.connect()  # type: ignore[no-untyped-call]
        await asyncio.to_thread(client.write_coil, DEFROST_COIL, True, device_id=1)
        await until(lambda: values(d, "defrost") == [0.0, 1.0], "the defrost coil")
        await asyncio.to_thread(client.write_register, 0, 150, device_id=1)  # 15 °C while it defrosts
        await until(lambda: values(d, "temperature").count(15.0) >= 3, "three warm polls during the defrost")
        assert [a.kind for a in d.journal.alerts.find()] == []
    finally:
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]
        await d.stop()


@pytest.mark.peer
@pytest.mark.asyncio
async def test_on_an_rs485_bus_the_alarm_input_pages(pty_pair: Callable[[str], PtyPair], tmp_path: Path) -> None:
    pair = pty_pair("CTRL")
    spec = {"1": {**SPEC["1"], "hr": [0xFFCE], "co": [0, 0, 0, 1], "di": [0, 1]}}  # -5.0 °C, defrost, alarm
    peer = ModbusPeer(pair, spec).start()
    where = f"port: {pair.client}, address: 1"
    cfg = parse_config(CONFIG.format(tmp=tmp_path, type="modbus_rtu", where=where, registers=REGISTERS), "c.yaml")
    d = Daemon(cfg)
    await d.start()
    try:
        await until(lambda: values(d, "controller_alarm") == [1.0], "the alarm input")
        assert values(d, "defrost") == [1.0] and -5.0 in values(d, "temperature")
        # the controller's alarm pages (and -5.0 °C is also below the mandarin's 5 °C: its own alarm)
        await until(lambda: "controller_alarm" in [a.kind for a in d.journal.alerts.find()], "the controller alarm")
    finally:
        await d.stop()
        peer.stop()
