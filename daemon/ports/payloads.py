"""Named payload formats that a transport driver (MQTT today) hands raw messages to.

A device family whose messages travel over a transport another driver owns (RuuviTag and BTHome
advertisements relayed by BLE gateways to the MQTT broker) registers its decoder here; the transport
driver looks up the `format:` names it does not know itself. So the family is its own driver folder
and neither driver imports the other. Nothing in the core reads this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from daemon.ports.model import Sample


class PayloadError(ValueError):
    """The message gave no sample at all; `reason` is short and stable (the transport logs it once)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Message:
    """One message for one configured sensor, with what the decoder may need from its config."""

    topic: str
    payload: bytes
    sensor: str
    now: float  # receive time, UTC epoch seconds (for de-duplication windows, not for stamping)
    interval: float = 60.0  # the sensor's configured report interval, seconds
    quantities: Sequence[str] | None = None  # the sensor's required quantities; None = what the device sends


@dataclass(frozen=True)
class PayloadFormat:
    """A decoder and its per-sensor options. `decode` raises PayloadError for a message with nothing in it;
    `new_state` makes what it keeps between messages of one sensor (de-duplication, keys)."""

    name: str
    decode: Callable[[Message, Any, Any], list[Sample]]
    options: type[BaseModel]
    new_state: Callable[[], Any] = dict
    topics: Callable[[str, Any], list[str]] = field(default=lambda topic, _options: [topic])
    discovery: Callable[[str], list[str]] | None = None  # wildcards whose other topics show up as unmapped
    description: str = ""


FORMATS: dict[str, PayloadFormat] = {}


def register(fmt: PayloadFormat) -> PayloadFormat:
    """Add `fmt` under its name; a name taken twice is a bug."""
    if fmt.name in FORMATS:
        raise RuntimeError(f"payload format {fmt.name!r} registered twice")
    FORMATS[fmt.name] = fmt
    return fmt


def lookup(name: str) -> PayloadFormat | None:
    return FORMATS.get(name)
