"""The broker's real in-flight window, seen from its traffic: how many QoS 1 messages it sends before it waits.

The driver commits early once 3/4 of the window it knows awaits acknowledgement (`mqtt.receive_maximum` on
MQTT 5, `mqtt.broker_inflight` on 3.1.1). A broker that keeps to a smaller window (EMQX grants the smaller of
the Receive Maximum and its `mqtt.max_inflight`, 32 by default) stops sending before that commit comes, and
every commit window then passes with the broker stopped: at most W messages per `storage.flush_interval`, less
than a center publishes, and the broker's queue grows until it drops.

What such a stall looks like: the messages stop while some await acknowledgement, and once the timed commit
acknowledges them the broker sends its queue at once. Low traffic has the silence but not the burst; a busy
broker that is not stopped has the burst but not the silence. Two such stalls in a row at the same count make
that count the window; the driver then commits at 3/4 of it.

The second stall is not waited out: once one was seen, the driver commits as soon as the messages stop at that
count again (`stalled`). That costs a strict broker 1 s instead of a window, and it tells a broker's stall from a
gateway that publishes its N sensors at once every minute: with a 60 s window its next burst can come just after
each timed commit, N every time, which looks like a stall; after a commit of our choosing 1 s later it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

QUIET_S = 1.0
"""No message for this long before an acknowledgement: the broker may have been stopped."""
BURST_S = 0.5
"""How soon after the acknowledgement the broker's queue must arrive (a broker across a 4G link answers later
than one on the box)."""
BURST_MIN = 4
"""Messages within BURST_S that make a burst (and the fewest awaiting that make a stall)."""
SEEN_TWICE = 2
"""Windows that must stop at the same count before it is taken as the broker's."""


@dataclass(slots=True)
class _Look:
    """Acknowledgements after a silence: is the broker's queue coming?"""

    at: float
    stopped_at: int
    got: int = 0


class WindowWatch:
    """Learns a broker window smaller than the one configured, never a larger one, and forgets it once the
    broker sends past it (it was a coincidence: a gateway that publishes all its sensors at once)."""

    def __init__(self) -> None:
        self.learned: int | None = None
        self._last_arrival: float | None = None
        self._look: _Look | None = None
        self._suspects: list[int] = []

    def arrived(self, now: float, n: int, awaiting: int) -> bool:
        """`n` QoS 1 messages arrived at `now`, `awaiting` are now unacknowledged; True when the window changed."""
        changed = False
        look = self._look
        if look is not None:
            if now - look.at <= BURST_S:
                look.got += n
                if look.got >= BURST_MIN:
                    changed = self._seen(look.stopped_at)
                    self._look = None
            else:
                self._suspects.clear()  # the acknowledgement brought nothing: traffic is low, not stopped
                self._look = None
        if self.learned is not None and awaiting > self.learned:
            self.learned, changed = None, True
        self._last_arrival = now
        return changed

    def acked(self, now: float, awaiting: int) -> None:
        """Acknowledgements go out at `now` while `awaiting` messages were unacknowledged."""
        if self._look is not None:
            if now - self._look.at <= BURST_S:
                return  # the rest of one commit's acknowledgements
            self._suspects.clear()
            self._look = None
        quiet = self._last_arrival is not None and now - self._last_arrival >= QUIET_S
        if quiet and awaiting >= BURST_MIN:
            self._look = _Look(now, awaiting)

    def stalled(self, now: float, awaiting: int) -> bool:
        """The messages stopped again, for QUIET_S, at the count of the stall seen before: commit now (see above)."""
        return (bool(self._suspects) and awaiting == self._suspects[-1] and self._last_arrival is not None
                and now - self._last_arrival >= QUIET_S)

    def suspect(self) -> int | None:
        """The count of the one stall seen so far, if any: the driver checks `stalled` once the messages stop there."""
        return self._suspects[-1] if self._suspects else None

    def _seen(self, stopped_at: int) -> bool:
        if self._suspects and self._suspects[-1] != stopped_at:
            self._suspects.clear()
        self._suspects.append(stopped_at)
        if len(self._suspects) < SEEN_TWICE or (self.learned is not None and stopped_at >= self.learned):
            return False
        self.learned = stopped_at
        self._suspects.clear()
        return True
