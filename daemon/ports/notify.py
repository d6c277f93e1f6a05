"""The seam between the alert outbox (core) and notifier drivers (console, modem, HTTP)."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class NotifierBase(BaseModel):
    """Options every notifier has."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    type: str


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing text to one person, already rendered in their language.

    `key` and `params` are what `text` was rendered from (`alert.temp_high`, `resolve` ...;
    every value a string). Template-only channels (mainland cloud SMS) send these instead of
    the text; both default to empty, and such channels then fall back to a generic template.
    """

    outbox_id: int
    alert_id: int | None
    contact: str
    address: str
    text: str
    lang: str
    key: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message a person sent back (an SMS reply such as `ACK 17`)."""

    sender: str
    text: str
    ts: float
    channel: str


def _ignore_incoming(_msg: Incoming) -> None:
    return None


def _ignore_delivery(_ref: str, _delivered: bool, _detail: str) -> None:
    return None


@dataclass
class NotifierContext:
    """What the core gives a notifier: where replies and delivery reports go."""

    on_incoming: Callable[[Incoming], None] = _ignore_incoming
    on_delivery: Callable[[str, bool, str], None] = _ignore_delivery  # (ref, delivered, detail)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("coldchain.notify"))


class Notifier(abc.ABC):
    """Delivers rendered messages through one channel.

    `send()` hands one message over and returns the channel's reference (e.g. the SMS
    TP-MR or a provider message id). Channels that can receive (a modem) call
    `ctx.on_incoming` for each reply and `ctx.on_delivery` for delivery reports; long-running
    work (reading the modem's unsolicited lines) goes in `run()`, which the daemon supervises.
    """

    Config: ClassVar[type[NotifierBase]]
    type_key: ClassVar[str] = ""

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        self.config = config
        self.ctx = ctx or NotifierContext()

    @property
    def source(self) -> str:
        return f"{self.type_key}:{self.config.id}"

    @abc.abstractmethod
    async def send(self, message: Message) -> str | None:
        """Hand `message` to the channel; return the channel's reference, or raise NotifierError."""

    async def run(self) -> None:  # noqa: B027 - optional hook
        """Long-running work (listen for replies, keep a modem healthy); returns at once if none."""

    async def health(self) -> dict[str, object]:
        """Facts for `doctor` and /healthz (registration, signal, last error)."""
        return {"source": self.source}

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release ports and connections."""
