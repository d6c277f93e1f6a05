"""What the BLE families' real-peer tests share: `coldchain doctor` run while a gateway keeps publishing."""

from __future__ import annotations

import threading
import time

from daemon.app.doctor import run_doctor
from daemon.config.schema import AppConfig
from tests.drivers.sensors.mqtt.conftest import Broker


async def doctor_while_publishing(broker: Broker, cfg: AppConfig, messages: list[tuple[str, bytes | str]]) -> str:
    """The doctor's text after a 2 s probe, `messages` published (QoS 0, as a gateway does) all along."""
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            for topic, payload in messages:
                broker.publish(topic, payload, qos=0)
            time.sleep(0.3)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        return (await run_doctor(cfg, "config.yaml", lang="en", seconds=2)).render()
    finally:
        stop.set()
        t.join()
