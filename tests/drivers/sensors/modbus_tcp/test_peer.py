"""The modbus_tcp driver against pymodbus's TCP server, in both framings (MBAP and RTU over TCP)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from drivers.registry import SENSORS
from drivers.sensors.modbus_tcp import ModbusTcpConfig, ModbusTcpDriver
from tests.drivers.sensors.conftest import running, until
from tests.drivers.sensors.fakes import Recorder, context
from tests.drivers.sensors.modbus_tcp.conftest import Gateway, free_port

pytestmark = pytest.mark.peer


def th(sid: str, port: int, unit: int, framing: str = "tcp", **options: Any) -> ModbusTcpConfig:
    return ModbusTcpConfig.model_validate({
        "id": sid, "zone": "z1", "type": "modbus_tcp", "host": "127.0.0.1", "tcp_port": port, "unit_id": unit,
        "framing": framing, "preset": "xy_md02", "interval": "0.3s", "timeout": 0.3, **options,
    })


def good(rec: Recorder, sid: str) -> list[dict[str, float]]:
    out = []
    for batch in rec.batches:
        mine = [s for s in batch if s.sensor == sid]
        if mine and all(s.fault is None for s in mine):
            out.append({s.quantity: s.value for s in mine if s.value is not None})
    return out


def faults(rec: Recorder, sid: str) -> list[str]:
    return [s.fault for s in rec.samples(sid) if s.fault]


def test_registered() -> None:
    assert SENSORS["modbus_tcp"] is ModbusTcpDriver


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
@pytest.mark.asyncio
async def test_reads_values_and_exception_responses(gateways: Callable[..., Gateway], framing: str) -> None:
    gw = gateways(framing)
    rec = Recorder()
    sensors = [th("d1", gw.port, 1, framing), th("d2", gw.port, 2, framing, combine_reads=False),
               th("d3", gw.port, 3, framing), th("d9", gw.port, 9, framing)]
    driver = ModbusTcpDriver(sensors, context(rec))
    async with running(driver):
        await until(lambda: len(good(rec, "d1")) >= 3 and len(faults(rec, "d9")) >= 3, "three polls")
    name = f"modbus_tcp:127.0.0.1:{gw.port}"
    assert all(v == {"temperature": 30.5, "humidity": 54.6} for v in good(rec, "d1"))
    assert good(rec, "d2") and all(v == {"temperature": -20.5, "humidity": 54.6} for v in good(rec, "d2"))
    assert set(faults(rec, "d3")) == {f"{name}#3: exception response to FC04 0x0001+2: "
                                      "exception 0x02 (illegal data address)"}
    # a unit pymodbus does not serve: exception 0x04 (a real gateway would time out or say 0x0B)
    assert set(faults(rec, "d9")) == {f"{name}#9: exception response to FC04 0x0001+2: "
                                      "exception 0x04 (server device failure)"}
    assert rec.online["d1"] == (True, "") and rec.online["d9"][0] is False


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
@pytest.mark.asyncio
async def test_dead_gateway_faults_and_the_other_keeps_its_interval(
    gateways: Callable[..., Gateway], framing: str
) -> None:
    live, mute = gateways(framing), gateways(framing)
    rec = Recorder()
    sensors = [th("live", live.port, 1, framing), th("mute", mute.port, 1, framing, timeout=1.5, interval=0.3),
               th("gone", free_port(), 1, framing)]
    groups = ModbusTcpDriver.group(sensors)
    assert [[s.id for s in g] for g in groups] == [["live"], ["mute"], ["gone"]]
    drivers = [ModbusTcpDriver(g, context(rec)) for g in groups]
    mute.pause()  # connected but silent: a DTU whose serial side died, or a half-open 4G link
    async with running(drivers[0]), running(drivers[1]), running(drivers[2]):
        await until(lambda: len(faults(rec, "mute")) >= 4, "two silent polls of the paused gateway")
    order = [b[0].sensor for b in rec.batches if b[0].sensor in ("live", "mute")]
    between = [len(seg) for seg in "".join("L" if s == "live" else "|" for s in order).split("|")[1:-1]]
    assert between and all(n >= 2 for n in between), order  # the live gateway polled on during each 1.5 s wait
    assert all(f.endswith("no answer to FC04 0x0001+2 in 1.5 s") for f in faults(rec, "mute"))
    assert all("gateway down (cannot connect: Connection refused)" in f for f in faults(rec, "gone")), faults(rec, "gone")
    assert rec.online["gone"][0] is False and rec.online["live"] == (True, "")


@pytest.mark.asyncio
async def test_gateway_back_resumes_polling(gateways: Callable[..., Gateway]) -> None:
    gw = gateways("tcp")
    rec = Recorder()
    driver = ModbusTcpDriver([th("d1", gw.port, 1)], context(rec))
    async with running(driver) as task:
        await until(lambda: len(good(rec, "d1")) >= 1, "a first reading")
        await asyncio.to_thread(gw.stop)
        await until(lambda: rec.online["d1"][0] is False, "d1 offline")
        await until(lambda: driver.describe()["link"] == "down", "link down")
        before = len(good(rec, "d1"))
        await asyncio.to_thread(gw.start)
        await until(lambda: len(good(rec, "d1")) >= before + 2, "readings after the gateway is back")
        assert not task.done()
    assert rec.online["d1"] == (True, "")
    assert any("gateway down" in f for f in faults(rec, "d1"))


@pytest.mark.asyncio
async def test_probe_asks_each_device_once(gateways: Callable[..., Gateway]) -> None:
    gw = gateways("rtu")
    rec = Recorder()
    driver = ModbusTcpDriver([th("d1", gw.port, 1, "rtu"), th("d9", gw.port, 9, "rtu")], context(rec))
    try:
        result = await driver.probe(5.0)
    finally:
        await driver.close()
    assert result["sensors"]["d1"] == {"answered": True, "values": {"temperature": 30.5, "humidity": 54.6},
                                       "detail": f"modbus_tcp:127.0.0.1:{gw.port}#1: answered"}
    assert result["sensors"]["d9"]["answered"] is False and "#9: exception response" in result["sensors"]["d9"]["detail"]
    assert rec.batches == []
