"""`type: modbus_tcp`: transmitters behind an Ethernet/RS485 gateway or a 4G DTU (Modbus TCP or RTU over TCP).

One driver instance per gateway (host, port); its devices are asked in turn on one connection, since
a DTU handles one request at a time. Each gateway runs in its own task with its own timeouts, so a
dead one never delays another. Register maps and presets are `modbus_rtu`'s (one list for both).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from daemon.ports.errors import ConfigError, SensorError, SensorReportedError, SensorTimeout
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, SensorBase, SensorDriver
from drivers.registry import sensor
from drivers.sensors.modbus_rtu import decode, plan_reads
from drivers.sensors.modbus_tcp import frames
from drivers.sensors.modbus_tcp.link import GatewayDown, GatewayLink
from drivers.sensors.modbus_tcp.schema import ModbusTcpConfig, QuantityName

__all__ = ["SAMPLE_YAML", "ModbusTcpConfig", "ModbusTcpDriver"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `sensors:` list item showing every option with its default."""


def gateway_name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def framing_conflicts(sensors: Sequence[Any]) -> list[str]:
    """Sensors on one gateway that disagree on its framing (a gateway speaks one)."""
    by_gw: dict[tuple[str, int], dict[str, list[str]]] = {}
    for s in sensors:
        by_gw.setdefault((s.host, s.tcp_port), {}).setdefault(s.framing, []).append(s.id)
    problems = []
    for gw, seen in by_gw.items():
        if len(seen) > 1:
            parts = "; ".join(f"{f} for {', '.join(ids)}" for f, ids in seen.items())
            problems.append(f"modbus_tcp sensors on {gateway_name(*gw)} disagree on framing ({parts}); "
                            "one gateway has one framing")
    return problems


@sensor("modbus_tcp")
class ModbusTcpDriver(SensorDriver):
    """All transmitters behind one gateway, asked in turn by one task."""

    Config = ModbusTcpConfig

    def __init__(self, sensors: Sequence[SensorBase], ctx: DriverContext) -> None:
        super().__init__(sensors, ctx)
        devices = [s for s in self.sensors if isinstance(s, ModbusTcpConfig)]
        if not devices or len(devices) != len(self.sensors) or len({(d.host, d.tcp_port) for d in devices}) != 1:
            raise TypeError("ModbusTcpDriver serves ModbusTcpConfig sensors on one gateway")
        problems = framing_conflicts(devices)
        if problems:
            raise ConfigError(problems)
        self.devices = devices
        first = devices[0]
        self.link = GatewayLink(first.host, first.tcp_port, first.framing, ctx.log)
        self.next_due = {d.id: 0.0 for d in devices}
        self.online: dict[str, bool | None] = {d.id: None for d in devices}
        self.last: dict[str, dict[str, Any]] = {d.id: {} for d in devices}
        self.tick = min(d.interval for d in devices)

    @classmethod
    def group(cls, sensors: Sequence[SensorBase]) -> list[list[SensorBase]]:
        """One instance per gateway (host, tcp_port), in config order."""
        problems = framing_conflicts(sensors)
        if problems:
            raise ConfigError(problems)
        groups: dict[tuple[str, int], list[SensorBase]] = {}
        for s in sensors:
            groups.setdefault((s.host, s.tcp_port), []).append(s)  # type: ignore[attr-defined]
        return list(groups.values())

    @property
    def source(self) -> str:
        return f"modbus_tcp:{gateway_name(self.link.host, self.link.port)}"

    def device_source(self, dev: ModbusTcpConfig) -> str:
        """Names one device in faults and logs: `modbus_tcp:192.168.1.50:502#3`."""
        return f"{self.source}#{dev.unit_id}"

    # -- asking

    async def read(self, dev: ModbusTcpConfig) -> dict[QuantityName, float]:
        """One device's scaled values; raises SensorError (GatewayDown is reported as a SensorTimeout)."""
        src = self.device_source(dev)
        values: dict[QuantityName, float] = {}
        for rd in plan_reads(dev):
            where = rd.where
            try:
                words = await self.link.read(dev.unit_id, rd.function_code, rd.start, rd.count, dev.timeout)
            except GatewayDown as exc:
                raise SensorTimeout(src, f"gateway down ({exc.reason})") from exc
            except TimeoutError as exc:
                raise SensorTimeout(src, f"no answer to {where} in {dev.timeout:g} s") from exc
            except frames.ExceptionReply as exc:
                raise SensorReportedError(src, f"exception response to {where}: {exc}") from exc
            except frames.BadFrame as exc:
                raise SensorTimeout(src, f"bad answer to {where}: {exc}") from exc
            for q in rd.quantities:
                reg = dev.registers[q]
                off = reg.number - rd.start
                values[q] = decode(words[off : off + reg.words], reg)
        return values

    async def _poll_device(self, dev: ModbusTcpConfig) -> tuple[list[Sample], bool]:
        """Samples for one device, and whether it answered."""
        try:
            values = await self.read(dev)
        except SensorError as exc:
            why = str(exc)
            if self.online[dev.id] is not False:
                self.ctx.log.warning("sensor %s: %s", dev.id, why)
            self.online[dev.id] = False
            self.last[dev.id] = {"values": {}, "last_error": why, "last_ok": self.last[dev.id].get("last_ok")}
            self.ctx.set_online(dev.id, False, why)
            ts = self.ctx.clock.now()
            return [Sample(dev.id, q, None, ts=ts, fault=why) for q in dev.registers], False
        ts = self.ctx.clock.now()
        if self.online[dev.id] is False:
            self.ctx.log.info("%s (sensor %s) answers again", self.device_source(dev), dev.id)
        self.online[dev.id] = True
        self.last[dev.id] = {"values": dict(values), "last_error": None, "last_ok": ts}
        self.ctx.set_online(dev.id, True, "")
        return [Sample(dev.id, q, v, dev.unit_of(q), ts) for q, v in values.items()], True

    async def poll(self) -> None:
        """Ask every device that is due, in turn, handing each one's samples over as it answers (committed within
        `storage.commit_interval`)."""
        now, slack = time.monotonic(), 0.1 * self.tick
        answered = []
        for dev in self.devices:
            if now < self.next_due[dev.id] - slack:
                continue
            self.next_due[dev.id] = now + dev.interval
            samples, ok = await self._poll_device(dev)
            answered.append(ok)
            self.ctx.hand_over(samples, self.source)
        if answered and not any(answered) and self.link.state == "open":
            await self.link.drop("no device answered")  # a half-open 4G link: reconnect on the next poll

    async def run(self) -> None:
        """Poll at each device's interval; while the gateway is down, retry the connection at its backoff."""
        while True:
            await self.poll()
            wake = min(self.next_due.values())
            if self.link.state == "down" and self.link.retry_at < wake:
                await asyncio.sleep(max(0.0, self.link.retry_at - time.monotonic()))
                with contextlib.suppress(GatewayDown):
                    await self.link.connect()
                    self.next_due = dict.fromkeys(self.next_due, 0.0)  # back: poll everyone at once
                continue
            await asyncio.sleep(max(0.0, wake - time.monotonic()))

    # -- installer tools

    async def probe(self, seconds: float) -> dict[str, Any]:
        """Ask each device once (no journal, no online state): for `coldchain doctor`."""
        out: dict[str, dict[str, Any]] = {}

        async def ask_all() -> None:
            for dev in self.devices:
                try:
                    values = await self.read(dev)
                except SensorError as exc:
                    out[dev.id] = {"answered": False, "values": {}, "detail": str(exc)}
                else:
                    out[dev.id] = {"answered": True, "values": values,
                                   "detail": f"{self.device_source(dev)}: answered"}

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ask_all(), timeout=seconds)
        for dev in self.devices:
            out.setdefault(dev.id, {"answered": False, "values": {},
                                    "detail": f"{self.device_source(dev)}: not asked within {seconds:g} s"})
        return {"sensors": out}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "gateway": gateway_name(self.link.host, self.link.port),
            "framing": self.link.framing,
            "link": self.link.state,
            "link_error": self.link.error or None,
            "sensors": {d.id: {"unit_id": d.unit_id, "function_code": d.function_code, "online": self.online[d.id],
                               **self.last[d.id]} for d in self.devices},
        }

    async def close(self) -> None:
        await self.link.close()
