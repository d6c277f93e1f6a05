"""A notifier that prints exactly the SMS text that would be sent (demo, tests, dry runs)."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pydantic import Field

from daemon.ports.notify import Message, Notifier, NotifierBase, NotifierContext
from drivers.registry import notifier

log = logging.getLogger("coldchain.notify.console")


class ConsoleConfig(NotifierBase):
    type: Literal["console"]
    stream: Literal["stdout", "stderr", "log"] = Field("stdout", description="where the text goes")


@notifier("console")
class ConsoleNotifier(Notifier):
    """Writes `SMS to <contact> <address>: <text>` lines."""

    Config = ConsoleConfig

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None, out: TextIO | None = None) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, ConsoleConfig)
        self.stream = config.stream
        self.out = out
        self.sent: list[Message] = []

    async def send(self, message: Message) -> str | None:
        line = f"SMS to {message.contact} <{message.address}>: {message.text}"
        if self.stream == "log":
            log.info("%s", line)
        else:
            out = self.out or (sys.stdout if self.stream == "stdout" else sys.stderr)
            print(line, file=out, flush=True)
        self.sent.append(message)
        return f"console-{message.outbox_id}"
