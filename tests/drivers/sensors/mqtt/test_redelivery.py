"""A broker's resend after a kill is recognised from the journal's receipts; its backlog is flagged replayed.

Real Mosquitto; the journal side is a recorder whose commits the test completes (or never does: a kill
between the commit and the acknowledgement).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon.config.schema import AppConfig
from daemon.ports.clock import Clock
from daemon.ports.model import Sample
from daemon.ports.sources import DriverContext, Receipt
from drivers.sensors.mqtt import MqttDriver
from drivers.sensors.mqtt.redelivery import ReceiptBook
from tests.drivers.sensors.mqtt.test_driver import config, driving, uid
from tests.peers import until

from .conftest import Broker


class Commits:
    """submit() records samples and receipts; commits complete at once unless `hold` (never acknowledged)."""

    def __init__(self, receipts: Sequence[bytes] = (), hold: bool = False) -> None:
        self.samples: list[Sample] = []
        self.receipts: list[Receipt] = []
        self.stored_receipts = list(receipts)
        self.hold = hold

    def submit(self, samples: Sequence[Sample], receipt: Receipt | None = None, /) -> asyncio.Future[None]:
        self.samples += samples
        if receipt is not None:
            self.receipts.append(receipt)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.hold:
            fut.set_result(None)
        return fut

    def ctx(self, cfg: AppConfig) -> DriverContext:
        async def emit(samples: Sequence[Sample]) -> None:
            self.samples += samples

        return DriverContext(Clock(), emit, lambda *_: None, logging.getLogger("coldchain.test.mqtt"), cfg,
                             self.submit, lambda _source: list(self.stored_receipts))


def _config(tmp_path: Path, broker: Broker, u: str) -> AppConfig:
    return config(tmp_path, {"port": broker.port, "client_id": f"t-{u}"},
                  [{"id": "z2m", "format": "zigbee2mqtt", "topic": f"zigbee2mqtt/{u}"}])


@pytest.mark.asyncio
async def test_a_batch_committed_before_a_kill_is_acknowledged_when_resent_not_stored_twice(
        broker: Broker, tmp_path: Path) -> None:
    u = uid()
    cfg = _config(tmp_path, broker, u)
    first = Commits(hold=True)  # committed (the receipt is in the journal), killed before the PUBACKs
    driver = MqttDriver(cfg.sensors, first.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        for v in (1.5, 2.5, 3.5):
            broker.publish(f"zigbee2mqtt/{u}", f'{{"temperature": {v}}}')
        await until(lambda: len(first.samples) == 3, "three readings submitted")
    assert {r.source for r in first.receipts} == {driver.source}
    second = Commits([r.body for r in first.receipts])
    driver2 = MqttDriver(cfg.sensors, second.ctx(cfg))
    async with driving(driver2):
        await until(lambda: driver2.counters["redelivered_already_stored"] == 3, "the three resent with DUP")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 1.5}')  # the same payload, a new message: stored
        await until(lambda: second.samples, "the new message")
        await driver2.settle()
    assert [s.value for s in second.samples] == [1.5]
    third = Commits()
    driver3 = MqttDriver(cfg.sensors, third.ctx(cfg))
    async with driving(driver3):  # the resent copies were acknowledged: nothing more comes back
        await until(lambda: driver3.connected, "connection")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 9.5}')
        await until(lambda: third.samples, "the next message")
    assert [s.value for s in third.samples] == [9.5]


@pytest.mark.asyncio
async def test_without_its_receipt_a_resent_batch_is_stored_again(broker: Broker, tmp_path: Path) -> None:
    """The receipt is what tells: a commit that did not happen (no receipt) is stored on redelivery."""
    u = uid()
    cfg = _config(tmp_path, broker, u)
    first = Commits(hold=True)
    driver = MqttDriver(cfg.sensors, first.ctx(cfg))
    async with driving(driver):
        await until(lambda: driver.connected, "connection")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 4.5}')
        await until(lambda: first.samples, "submitted")
    second = Commits()
    driver2 = MqttDriver(cfg.sensors, second.ctx(cfg))
    async with driving(driver2):
        await until(lambda: second.samples, "the redelivery")
        await driver2.settle()
    assert [s.value for s in second.samples] == [4.5]
    assert driver2.counters["redelivered_already_stored"] == 0


@pytest.mark.asyncio
async def test_the_backlog_of_a_resumed_session_is_flagged_replayed_and_live_messages_are_not(
        broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="coldchain.test.mqtt")
    u = uid()
    cfg = _config(tmp_path, broker, u)
    first = Commits()
    driver = MqttDriver(cfg.sensors, first.ctx(cfg))
    async with driving(driver):  # the persistent session exists from here on
        await until(lambda: driver.connected, "connection")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 0.5}')
        await until(lambda: first.samples, "a live reading")
        await driver.settle()
    assert [s.replayed for s in first.samples] == [False]  # a new session has no backlog
    for v in range(5):  # queued by the broker while the daemon is away
        broker.publish(f"zigbee2mqtt/{u}", f'{{"temperature": {v}.25, "linkquality": 80}}')
    second = Commits()
    driver2 = MqttDriver(cfg.sensors, second.ctx(cfg))
    async with driving(driver2):
        await until(lambda: len(second.samples) >= 5 and driver2._replay.nonce is None, "backlog and marker")
        broker.publish(f"zigbee2mqtt/{u}", '{"temperature": 7.75}')
        await until(lambda: 7.75 in [s.value for s in second.samples], "a live reading after the backlog")
        await driver2.settle()
    temps = [s for s in second.samples if s.quantity == "temperature"]
    assert [(s.value, s.replayed) for s in temps] == [(0.25, True), (1.25, True), (2.25, True), (3.25, True),
                                                     (4.25, True), (7.75, False)]
    assert driver2.counters["replayed_messages"] == 5
    # the count is every message of the backlog: retained ones of other tests' topics come with it on this broker
    assert any(re.search(r"the broker replayed \d+ queued messages", r.getMessage()) for r in caplog.records)


def test_a_receipt_book_forgets_its_oldest_batches_past_its_cap() -> None:
    class Msg:
        def __init__(self, mid: int) -> None:
            self.mid, self.qos, self.dup, self.topic, self.payload = mid, 1, True, "t", b"x"

    book = ReceiptBook()
    body = book.body([Msg(1), Msg(2)])  # type: ignore[list-item]
    assert len(body) == 12
    assert ReceiptBook([body]).stored(Msg(2))  # type: ignore[arg-type]
    assert not ReceiptBook([body]).stored(Msg(3))  # type: ignore[arg-type]
    for start in range(3, 40_000, 1000):
        book.body([Msg(m) for m in range(start, start + 1000)])  # type: ignore[misc]
    assert not book.stored(Msg(1))  # type: ignore[arg-type]
    assert book.stored(Msg(39_000))  # type: ignore[arg-type]


def test_the_receipt_book_stays_bounded_and_still_knows_the_newest() -> None:
    """Hours of messages: the book keeps about CAP keys (memory flat), and a DUP copy of a recent one is known."""
    import paho.mqtt.client as paho

    from drivers.sensors.mqtt import redelivery

    book = ReceiptBook()
    msgs = []
    for i in range(4 * redelivery.CAP):
        m = paho.MQTTMessage(mid=i % 65535 + 1, topic=f"t/{i % 200}".encode())
        m.payload, m.qos = f'{{"v": {i}}}'.encode(), 1
        msgs.append(m)
    for start in range(0, len(msgs), 50):
        book.body(msgs[start:start + 50])
    assert len(book) == redelivery.CAP
    assert len(book._ring) == 6 * redelivery.CAP  # allocated once: memory flat from the first message
    last = msgs[-1]
    last.dup = True
    assert book.stored(last)
    first = msgs[0]
    first.dup = True
    assert not book.stored(first)
    again = ReceiptBook([book.body(msgs[-3:])])
    assert again.stored(last)


def test_a_replayed_copy_keeps_every_field_of_the_sample() -> None:
    from dataclasses import fields, replace

    from daemon.ports.model import Sample
    from drivers.sensors.mqtt import replayed_copy

    s = Sample("s1", "temperature", 4.5, "C", 1_700_000_000.0, "note")
    assert replayed_copy(s) == replace(s, replayed=True)
    # a field added to Sample must be copied by replayed_copy too
    assert [f.name for f in fields(Sample)] == ["sensor", "quantity", "value", "unit", "ts", "fault", "replayed"]
