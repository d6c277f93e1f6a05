"""The modbus_rtu driver on a replaying fake port: grouping, faults, unplug, probe, describe, config."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import serial
import yaml
from pydantic import ValidationError

from daemon.ports.errors import ConfigError
from drivers.registry import SENSORS
from drivers.sensors.modbus_rtu import SAMPLE_YAML, ModbusRtuConfig, ModbusRtuDriver
from drivers.sensors.serialport import PortDown, PortSettings, SerialLink
from tests.drivers.sensors.fakes import FakeSerial, Recorder, context, frame

REPLIES = {
    frame("01 04 00 01 00 02 20 0B"): frame("01 04 04 01 31 02 22 2A CE"),  # d1: 30.5 C, 54.6 %
    frame("02 04 00 01 00 02 20 38"): frame("02 04 04 FF 33 02 22 89 E6"),  # d2: -20.5 C, 54.6 %
}


def th(sid: str, address: int, **options: Any) -> ModbusRtuConfig:
    return ModbusRtuConfig.model_validate({
        "id": sid, "zone": "z1", "type": "modbus_rtu", "port": "/dev/ttyFAKE", "address": address,
        "preset": "xy_md02", "timeout": 0.05, **options,
    })


class Plug:
    """Opens the fake port unless the adapter is 'unplugged'."""

    def __init__(self, port: FakeSerial) -> None:
        self.port, self.present, self.opened = port, True, 0

    def __call__(self, _settings: PortSettings) -> FakeSerial:
        if not self.present:
            raise serial.SerialException(2, "could not open port /dev/ttyFAKE: [Errno 2] No such file or directory")
        self.opened += 1
        self.port.unplugged = False
        self.port.open()
        return self.port


def make(sensors: list[ModbusRtuConfig], fake: FakeSerial) -> tuple[ModbusRtuDriver, Recorder, Plug]:
    rec, plug = Recorder(), Plug(fake)
    ctx = context(rec)
    link = SerialLink(PortSettings(port="/dev/ttyFAKE"), ctx.log, opener=plug)
    return ModbusRtuDriver(sensors, ctx, link=link), rec, plug


def test_registered() -> None:
    assert SENSORS["modbus_rtu"] is ModbusRtuDriver
    assert ModbusRtuDriver.Config is ModbusRtuConfig


def test_group_one_instance_per_port() -> None:
    a, b, c = th("a", 1), th("b", 2, port="/dev/ttyUSB1"), th("c", 3)
    assert ModbusRtuDriver.group([a, b, c]) == [[a, c], [b]]


def test_group_rejects_mixed_line_settings_naming_the_sensors() -> None:
    with pytest.raises(ConfigError) as err:
        ModbusRtuDriver.group([th("a", 1), th("b", 2, baudrate=4800, parity="E"), th("c", 3, port="/dev/other")])
    assert err.value.problems == [
        "modbus_rtu sensors on /dev/ttyFAKE disagree on baudrate (9600 for a; 4800 for b); one bus has one baudrate",
        "modbus_rtu sensors on /dev/ttyFAKE disagree on parity (N for a; E for b); one bus has one parity",
    ]


@pytest.mark.asyncio
async def test_poll_reads_every_device_and_faults_the_silent_one() -> None:
    driver, rec, _ = make([th("d1", 1), th("d3", 3), th("d2", 2)], FakeSerial(REPLIES))
    await driver.poll()
    await driver.close()
    assert [(s.sensor, s.quantity, s.value, s.unit) for s in rec.samples("d1")] == [
        ("d1", "temperature", 30.5, "C"), ("d1", "humidity", 54.6, "%")]
    assert [s.value for s in rec.samples("d2")] == [-20.5, 54.6]
    why = "modbus_rtu:/dev/ttyFAKE#3: no answer to FC04 0x0001+2 in 0.05 s"
    assert [(s.quantity, s.value, s.fault) for s in rec.samples("d3")] == [
        ("temperature", None, why), ("humidity", None, why)]
    assert rec.online == {"d1": (True, ""), "d2": (True, ""), "d3": (False, why)}
    assert all(s.ts == driver.ctx.clock.now() for b in rec.batches for s in b)


@pytest.mark.asyncio
async def test_sensors_with_longer_intervals_are_polled_when_due() -> None:
    fake = FakeSerial(REPLIES)
    driver, rec, _ = make([th("d1", 1, interval=10), th("d2", 2, interval=30)], fake)
    assert driver.tick == 10
    await driver.poll()
    assert len(rec.batches) == 2
    await driver.poll()  # immediately again: nobody is due yet
    assert len(rec.batches) == 2
    driver.state["d1"].next_due = 0.0
    await driver.poll()
    assert [b[0].sensor for b in rec.batches] == ["d1", "d2", "d1"]
    await driver.close()


@pytest.mark.asyncio
async def test_unplugged_port_marks_everyone_offline_then_recovers() -> None:
    fake = FakeSerial(REPLIES)
    driver, rec, plug = make([th("d1", 1), th("d2", 2)], fake)
    await driver.poll()
    fake.unplugged, plug.present = True, False
    for st in driver.state.values():
        st.next_due = 0.0
    await driver.poll()
    assert driver.link.state == "down"
    assert rec.online["d1"][0] is False and rec.online["d2"][0] is False
    lost = "port down (lost: read failed: [Errno 5] Input/output error)"
    assert rec.online["d1"][1] == f"modbus_rtu:/dev/ttyFAKE#1: {lost}"
    assert rec.online["d2"][1].startswith("modbus_rtu:/dev/ttyFAKE#2: port down")
    assert all(s.fault and s.value is None for s in rec.batches[-1])
    assert driver.describe()["bus"] == "down"
    with pytest.raises(PortDown, match=r"^cannot open: No such file or directory$"):
        await driver.link.reopen()
    plug.present = True
    await driver.link.reopen()
    for st in driver.state.values():
        st.next_due = 0.0
    await driver.poll()
    assert rec.online == {"d1": (True, ""), "d2": (True, "")}
    assert [s.value for s in rec.batches[-2]] == [30.5, 54.6]
    assert plug.opened == 2
    await driver.close()


@pytest.mark.asyncio
async def test_run_schedules_one_job_per_bus_that_skips_rather_than_piles_up() -> None:
    driver, rec, _ = make([th("d1", 1, interval=3600)], FakeSerial(REPLIES))
    task = asyncio.create_task(driver.run())
    for _ in range(500):
        await asyncio.sleep(0.01)
        if rec.batches:
            break
    assert driver._scheduler is not None
    job = driver._scheduler.get_job("poll")
    assert job is not None and job.max_instances == 1 and job.coalesce
    assert job.trigger.interval.total_seconds() == 3600
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await driver.close()
    assert [s.value for s in rec.batches[0]] == [30.5, 54.6]


@pytest.mark.asyncio
async def test_a_bug_in_a_poll_reaches_the_supervisor() -> None:
    driver, _, _ = make([th("d1", 1)], FakeSerial(REPLIES))

    async def broken() -> None:
        raise RuntimeError("bug")

    driver.poll = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="bug"):
        await asyncio.wait_for(driver.run(), timeout=10)
    await driver.close()


@pytest.mark.asyncio
async def test_probe_and_describe() -> None:
    driver, rec, _ = make([th("d1", 1), th("d3", 3)], FakeSerial(REPLIES))
    result = await driver.probe(5.0)
    assert result["sensors"]["d1"]["answered"] is True
    assert result["sensors"]["d1"]["values"] == {"temperature": 30.5, "humidity": 54.6}
    assert result["sensors"]["d3"] == {"answered": False, "values": {},
                                       "detail": "modbus_rtu:/dev/ttyFAKE#3: no answer to FC04 0x0001+2 in 0.05 s"}
    assert rec.batches == []
    await driver.poll()
    info = driver.describe()
    await driver.close()
    assert info["source"] == "modbus_rtu:/dev/ttyFAKE"
    assert (info["port"], info["line"], info["bus"]) == ("/dev/ttyFAKE", "9600 8N1", "open")
    assert info["sensors"]["d1"]["values"] == {"temperature": 30.5, "humidity": 54.6}
    assert info["sensors"]["d3"]["last_error"].endswith("no answer to FC04 0x0001+2 in 0.05 s")


# --- config ---------------------------------------------------------------------------------


def test_sample_yaml_validates_as_the_xy_md02_preset() -> None:
    items = yaml.safe_load(SAMPLE_YAML)
    assert isinstance(items, list) and len(items) == 1
    cfg = ModbusRtuConfig.model_validate(items[0])
    preset = ModbusRtuConfig.model_validate({"id": cfg.id, "zone": cfg.zone, "type": "modbus_rtu",
                                             "address": 1, "preset": "xy_md02"})
    assert cfg.model_dump(exclude={"preset"}) == preset.model_dump(exclude={"preset"})


def test_preset_fills_and_explicit_keys_win() -> None:
    cfg = th("a", 1, function_code=3, registers={"temperature": {"divisor": 100}, "humidity": None})
    assert cfg.function_code == 3
    assert list(cfg.registers) == ["temperature"]
    t = cfg.registers["temperature"]
    assert (t.number, t.divisor, t.signed) == (1, 100.0, True)
    rh_first = th("b", 1, preset="fc03_humidity_first")
    assert rh_first.function_code == 3
    assert {q: r.number for q, r in rh_first.registers.items()} == {"humidity": 0, "temperature": 1}


@pytest.mark.parametrize(
    "options",
    [
        {"address": 0},
        {"address": 248},
        {"function_code": 6},
        {"baudrate": 1234},
        {"parity": "X"},
        {"preset": "xy_md03"},
        {"preset": None},  # no register map at all
        {"registers": {"pressure": {"register": 3}}},
        {"registers": {"temperature": {"register": 70000}}},
        {"registers": {"temperature": {"divisor": 0}}},
        {"registers": {"temperature": {"words": 3}}},
        {"timeout": 0},
        {"colour": "blue"},
    ],
)
def test_invalid_options_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModbusRtuConfig.model_validate(
            {"id": "a", "zone": "z1", "type": "modbus_rtu", "address": 1, "preset": "xy_md02", **options}
        )


def test_port_failures_are_named_by_the_os_short_text() -> None:
    import termios

    from drivers.sensors.serialport import os_reason

    gone = serial.SerialException(2, "could not open port /dev/ttyUSB0: [Errno 2] No such file or directory")
    assert os_reason(gone) == "No such file or directory"
    assert os_reason(termios.error(5, "Input/output error")) == "Input/output error"
    assert os_reason(serial.SerialException("device disconnected")) == "device disconnected"
