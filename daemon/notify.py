"""The seam between the alert outbox (core) and notifier drivers (console, modem, HTTP)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class NotifierBase(BaseModel):
    """Options every notifier has."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    type: str


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing text to one person, already rendered in their language."""

    outbox_id: int
    alert_id: int | None
    contact: str
    address: str
    text: str
    lang: str


class Notifier(abc.ABC):
    """Delivers rendered messages through one channel."""

    Config: ClassVar[type[NotifierBase]]
    type_key: ClassVar[str] = ""

    def __init__(self, config: NotifierBase) -> None:
        self.config = config

    @property
    def source(self) -> str:
        return f"{self.type_key}:{self.config.id}"

    @abc.abstractmethod
    async def send(self, message: Message) -> str | None:
        """Hand `message` to the channel; return the channel's reference, or raise NotifierError."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release ports and connections."""
