"""Telling a broker's replay of a session's backlog from live messages.

When the daemon resumes its persistent session (a restart, a reconnect), the broker first sends
what it queued meanwhile: minutes or hours of readings in one burst. A message without a device
time gets its arrival time, which for those is not the measurement time; the reading is flagged
`REPLAYED` (`daemon/ports/model.py` Flag) so the record says so. Where the backlog ends is found
with a barrier: right after the connection is accepted, the driver publishes a marker to its own
topic; the broker queues it behind the backlog, so every message before the marker comes back is a
replay, and everything after it is live. A broker that refuses the marker topic (an ACL) is noticed
after `QUIET_END` seconds without a message, and logged.
"""

from __future__ import annotations

import time

QUIET_END = 30.0
"""Seconds without any message after which a replay whose marker never came back is taken as over."""


def marker_topic(client_id: str) -> str:
    return f"coldchain/replay-marker/{client_id}"


class ReplayWatch:
    """Whether messages of this connection are (still) the broker's backlog."""

    def __init__(self, client_id: str) -> None:
        self.topic = marker_topic(client_id)
        self.nonce: bytes | None = None
        self._last = 0.0
        self.replays = 0
        self.ended_quiet = 0
        self.count = 0
        """Messages of the current (or last) replay."""
        self.ended: str | None = None
        """Set when a replay ends ("marker" or "quiet"), for the driver to log; it clears it."""

    def start(self, nonce: bytes) -> None:
        """A resumed session whose marker `nonce` was published: messages are replays until it returns."""
        self.nonce = nonce
        self._last = time.monotonic()
        self.replays += 1
        self.count = 0

    def stop(self) -> None:
        """A new session (the broker kept nothing) or a lost connection."""
        self.nonce = None

    def is_marker(self, topic: str) -> bool:
        return topic == self.topic

    def marker(self, payload: bytes) -> None:
        """The marker came back: the backlog is over (a marker of an earlier connection changes nothing)."""
        if self.nonce is not None and payload == self.nonce:
            self.nonce, self.ended = None, "marker"

    def replaying(self) -> bool:
        """For each message in turn: is it part of the backlog?"""
        if self.nonce is None:
            return False
        now = time.monotonic()
        if now - self._last > QUIET_END:
            self.nonce, self.ended = None, "quiet"
            self.ended_quiet += 1
            return False
        self._last = now
        self.count += 1
        return True
