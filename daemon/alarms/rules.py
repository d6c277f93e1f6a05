"""Decide excursions from readings and commodity limits: delays, hysteresis, no data, faults.

Pure logic, no I/O: readings and clock ticks go in, `RuleEvent`s come out; the alert
manager persists them. Time is the readings' own timestamps, so a delay means "the
sensor saw this for that long", whatever the clock speed.

Late readings (older than the newest already seen for their series, e.g. a sensor's
own buffer replayed after an outage) are stored and forwarded but do not drive the
alarm state machines: an alarm about the past would page someone for a situation that
has already changed. The history and reports still show them.
"""

from __future__ import annotations

import collections
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from daemon.config.catalog import Commodity, commodity_rules
from daemon.config.schema import AppConfig, BandRule, DefrostWindow, ExposureRule, RateRule, ZoneConfig
from daemon.ports.model import Quantity, Reading

Action = Literal["pending", "fire", "clear", "cancel", "peak"]
FROZEN_BELOW = -10.0  # a commodity stored below this has only an upper limit by default
# An open alarm's peak is stored when it has moved PEAK_STEP (°C or %RH) past the stored one, or has moved at
# all and PEAK_EVERY seconds have passed since the last write; transitions always carry it. The page, API, PDF
# and trace page read the stored peak, which was frozen at the last transition (8.9 °C shown at 18.4 °C);
# writing it on every reading would be a journal write per reading on a room that stays warm.
PEAK_STEP = 0.5
PEAK_EVERY = 300.0
_DEFROST, _TEMPERATURE, _CONTROLLER_ALARM = Quantity.DEFROST, Quantity.TEMPERATURE, Quantity.CONTROLLER_ALARM
_DEVICE = frozenset(q for q in Quantity if q.device)
_NEG_INF = float("-inf")


@dataclass(frozen=True, slots=True)
class Limits:
    """A zone's effective alarm limits: the commodity's, overridden by the zone's config."""

    temp_high: float | None
    temp_low: float | None
    freeze: float | None
    temp_delay: float
    freeze_delay: float
    temp_clear_delay: float
    temp_hysteresis: float
    rh_high: float | None
    rh_low: float | None
    rh_delay: float
    rh_clear_delay: float
    rh_hysteresis: float
    no_data: bool
    stuck_after: float | None
    fault_after: int
    defrost: tuple[DefrostWindow, ...] = ()
    exposure: tuple[ExposureRule, ...] = ()
    rate: RateRule | None = None
    bands: tuple[BandRule, ...] = ()


def zone_limits(zone: ZoneConfig, commodity: Commodity | None) -> Limits:
    """Commodity defaults: high = temp_max; low = the higher of temp_min and the chilling limit
    (none for frozen goods, where only the upper limit matters); freeze = freezing point."""
    t, h, a = zone.alarms.temperature, zone.alarms.humidity, zone.alarms
    c = commodity
    bands = a.bands
    if bands is None:
        raw = commodity_rules().get(c.key, {}) if c else {}
        bands = [BandRule.model_validate(b) for b in raw.get("bands", [])]  # type: ignore[attr-defined]  # YAML data
    low_default: float | None = None
    if c is not None and not (c.temp_max is not None and c.temp_max <= FROZEN_BELOW):
        lows = [v for v in (c.temp_min, c.chilling_below) if v is not None]
        low_default = max(lows) if lows else None
    return Limits(
        temp_high=t.high if t.high is not None else (c.temp_max if c else None),
        temp_low=t.low if t.low is not None else low_default,
        freeze=t.freeze if t.freeze is not None else (c.freezing_point if c else None),
        temp_delay=t.delay,
        freeze_delay=t.freeze_delay,
        temp_clear_delay=t.clear_delay,
        temp_hysteresis=t.hysteresis,
        rh_high=(h.high if h.high is not None else (c.rh_max if c else None)) if h.enabled else None,
        rh_low=(h.low if h.low is not None else (c.rh_min if c else None)) if h.enabled else None,
        rh_delay=h.delay,
        rh_clear_delay=h.clear_delay,
        rh_hysteresis=h.hysteresis,
        no_data=a.no_data,
        stuck_after=a.stuck_after,
        fault_after=a.fault_after,
        defrost=tuple(a.defrost),
        exposure=tuple(a.exposure),
        rate=a.rate,
        bands=tuple(bands),
    )


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A change an alarm went through, to be persisted and acted on by the alert manager."""

    action: Action
    key: str
    zone: str
    sensor: str
    kind: str
    severity: str
    ts: float
    started: float
    value: float | None
    limit: float | None = None
    peak: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One limit on one quantity: out beyond `limit`, back only `hysteresis` inside it."""

    kind: str
    quantity: Quantity
    above: bool
    limit: float
    delay: float
    clear_delay: float
    hysteresis: float
    severity: str = "warning"

    def out(self, v: float) -> bool:
        return v > self.limit if self.above else v < self.limit

    def back(self, v: float) -> bool:
        return v <= self.limit - self.hysteresis if self.above else v >= self.limit + self.hysteresis


@dataclass(frozen=True, slots=True)
class Band(Threshold):
    """Inside [low, high] is out of order (a damage band); back once `hysteresis` outside it."""

    low: float = 0.0

    def out(self, v: float) -> bool:
        return self.low <= v <= self.limit

    def back(self, v: float) -> bool:
        return v < self.low - self.hysteresis or v > self.limit + self.hysteresis


def thresholds(lim: Limits) -> list[Threshold]:
    out: list[Threshold] = []
    T, H = Quantity.TEMPERATURE, Quantity.HUMIDITY
    if lim.temp_high is not None:
        out.append(Threshold("temp_high", T, True, lim.temp_high, lim.temp_delay, lim.temp_clear_delay,
                             lim.temp_hysteresis))
    if lim.temp_low is not None:
        out.append(Threshold("temp_low", T, False, lim.temp_low, lim.temp_delay, lim.temp_clear_delay,
                             lim.temp_hysteresis))
    if lim.freeze is not None:
        out.append(Threshold("freeze", T, False, lim.freeze, lim.freeze_delay, lim.temp_clear_delay,
                             lim.temp_hysteresis, "critical"))
    if lim.rh_high is not None:
        out.append(Threshold("rh_high", H, True, lim.rh_high, lim.rh_delay, lim.rh_clear_delay, lim.rh_hysteresis))
    if lim.rh_low is not None:
        out.append(Threshold("rh_low", H, False, lim.rh_low, lim.rh_delay, lim.rh_clear_delay, lim.rh_hysteresis))
    for b in lim.bands:
        out.append(Band("band", T, True, b.high, b.delay, lim.temp_clear_delay, lim.temp_hysteresis, low=b.low))
    return out


DEFROST_MUTES = ("temp_high", "rate", "band")
DEVICE_KINDS = frozenset({"battery_low"})
"""Alarms about a device, not about a room: they go to the installer (`contacts[].device_alarms`), do not
escalate, and do not change the room's state on the page."""
BATTERY_CLEAR = {Quantity.BATTERY: 5.0, Quantity.BATTERY_VOLTAGE: 0.1}  # back this far above the limit: changed
CONTROLLER_RECOVERY = 900.0
"""After a controller reports its defrost over, the room cools again: as a scheduled window's default `recovery`."""
CONTROLLER_DEFROST_MAX = 7200.0
"""A defrost a controller reports for longer than this no longer mutes anything: a controller stuck in
defrost, or one gone silent while in it, must not hide a warm room (defrosts last 20-60 min)."""


@dataclass
class _Track:
    """Timer state of one alarm key."""

    state: Literal["idle", "pending", "firing"] = "idle"
    started: float = 0.0
    in_since: float | None = None
    peak: float | None = None
    peak_stored: float | None = None  # the peak as the journal has it
    peak_at: float = float("-inf")  # reading time of that write


@dataclass
class _SensorState:
    last_seen: float
    last_ts: dict[str, float] = field(default_factory=dict)
    same_value: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # quantity -> (value, since, last)
    fault_streak: int = 0
    last_fault: str = ""
    prev_temp: tuple[float, float] | None = None  # (ts, value) of the last good temperature
    exposure: dict[int, collections.deque[tuple[float, float]]] = field(default_factory=dict)  # (start, seconds)
    recent: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)  # for the rate rule


class Rules:
    """All alarm conditions of one site."""

    def __init__(self, cfg: AppConfig, now: float) -> None:
        self.cfg = cfg
        self.limits = {z.id: zone_limits(z, cfg.commodity(z.id)) for z in cfg.zones}
        self.thresholds = {zid: thresholds(lim) for zid, lim in self.limits.items()}
        self.sensor_zone = {s.id: s.zone for s in cfg.sensors}
        self.stale_after = {s.id: s.stale_after_s for s in cfg.sensors}
        self.battery_low = {s.id: s.battery_low for s in cfg.sensors}
        self.tracks: dict[str, _Track] = {}
        self.sensors = {s.id: _SensorState(last_seen=now) for s in cfg.sensors}
        self.tz = zoneinfo.ZoneInfo(cfg.site.timezone)
        self.mutes: list[tuple[str, float, float, str]] = []  # (zone, start, end, reason)
        # what controllers in a room say of their defrost: zone -> sensor -> (defrosting, since when)
        self.controller_defrost: dict[str, dict[str, tuple[bool, float]]] = {}
        self._prefixes: dict[tuple[str, str], str] = {}  # (zone, sensor) -> "zone/sensor/" (track keys)

    # -- mutes

    def set_mutes(self, mutes: Iterable[tuple[str, float, float, str]]) -> None:
        """Maintenance windows: no new alarms for the zone between start and end."""
        self.mutes = list(mutes)

    def muted(self, zone: str, ts: float) -> str | None:
        return next((reason for z, a, b, reason in self.mutes if z == zone and a <= ts < b), None)

    def in_defrost(self, zone: str, ts: float) -> bool:
        """Inside a scheduled defrost window (or its recovery), in the site's time zone, or while a controller
        of the room reports a defrost (and `CONTROLLER_RECOVERY` after it)."""
        for on, since in self.controller_defrost.get(zone, {}).values():
            if since <= ts < since + (CONTROLLER_DEFROST_MAX if on else CONTROLLER_RECOVERY):
                return True
        windows = self.limits[zone].defrost
        if not windows:
            return False
        local = dt.datetime.fromtimestamp(ts, self.tz)
        for w in windows:
            hh, mm = (int(x) for x in w.start.split(":"))
            for day in (local.date(), local.date() - dt.timedelta(days=1)):
                start = dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=self.tz).timestamp()
                if start <= ts < start + w.duration + w.recovery:
                    return True
        return False

    def _suppressed(self, zone: str, kind: str, ts: float) -> str | None:
        why = self.muted(zone, ts)
        if why is None and kind in DEFROST_MUTES and self.in_defrost(zone, ts):
            why = "defrost"
        return why

    # -- restart

    def restore(self, open_alerts: Iterable[tuple[str, str, float, float | None]]) -> None:
        """Resume timers from the journal: (key, state, started, peak) of each open alarm.

        Silence is counted from start-up, not from the last stored reading: while the
        daemon was down the sensors were not silent, the daemon was deaf."""
        for key, state, started, peak in open_alerts:
            self.tracks[key] = _Track("pending" if state == "pending" else "firing", started, None, peak, peak)

    def clock_jumped(self, step: float) -> None:
        """The wall clock stepped by `step` seconds (NTP after a boot without RTC): move every timer with it,
        so a delay, a silence or a window is measured in time that really passed, and readings stamped after
        the step are not taken for late ones."""
        for st in self.sensors.values():
            st.last_seen += step
            st.last_ts = {q: t + step for q, t in st.last_ts.items()}
            st.same_value = {q: (v, t + step, last + step) for q, (v, t, last) in st.same_value.items()}
            if st.prev_temp is not None:
                st.prev_temp = (st.prev_temp[0] + step, st.prev_temp[1])
            for i, dq in st.exposure.items():
                st.exposure[i] = collections.deque((a + step, secs) for a, secs in dq)
            st.recent = collections.deque((t + step, v) for t, v in st.recent)
        self.controller_defrost = {z: {s: (on, t + step) for s, (on, t) in by.items()}
                                   for z, by in self.controller_defrost.items()}
        for tr in self.tracks.values():
            tr.started += step
            if tr.in_since is not None:
                tr.in_since += step

    def forget(self, keys: Iterable[str], open_alerts: Iterable[tuple[str, str, float, float | None]]) -> None:
        """Events for `keys` could not be stored (journal full): put their timers back as the journal has them,
        so the next evaluation raises them again instead of believing them raised."""
        keys = set(keys)
        for key in keys:
            self.tracks.pop(key, None)
        self.restore(a for a in open_alerts if a[0] in keys)

    # -- evaluation

    def on_readings(self, readings: Sequence[Reading]) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        sensors, tracks = self.sensors, self.tracks
        for r in readings:  # a controller's defrost first: its probe's reading of the same poll is in it
            if r.quantity is _DEFROST and r.good and r.sensor in sensors:
                self._defrost(r)
        # Once per reading of every batch: enum members and keys from module constants and per-sensor prefixes
        # (an enum class attribute or `.value` costs ~0.1-0.2 µs each in Python 3.11).
        for r in readings:
            st = sensors.get(r.sensor)
            if st is None:
                continue
            qty = r.quantity
            q = qty._value_
            if r.ts < st.last_ts.get(q, _NEG_INF):
                continue  # late reading: stored, but no alarm about the past
            st.last_ts[q] = r.ts
            if qty in _DEVICE:  # battery, signal: says nothing about the room, nor that the sensor measures
                events += self._battery(r) if qty is not _CONTROLLER_ALARM else self._controller(r)
                continue
            st.last_seen = max(st.last_seen, r.ts)
            prefix = self._prefix(r)
            if prefix + "no_data" in tracks:  # _clear's own test first: most readings have nothing open
                events += self._clear(prefix + "no_data", r.ts, r.value)
            if not r.good:
                st.fault_streak += 1
                st.last_fault = r.note
                lim = self.limits[r.zone]
                if st.fault_streak >= lim.fault_after:
                    detail = f"fault.values|count={st.fault_streak}|note={r.note}"
                    events += self._fire(prefix + "fault", r, "sensor_fault", None, detail)
                continue
            st.fault_streak = 0
            if prefix + "fault" in tracks:
                events += self._clear(prefix + "fault", r.ts, r.value)
            events += self._stuck(r, st, prefix)
            if qty is _TEMPERATURE:
                events += self._exposure(r, st)
                events += self._rate(r, st)
                st.prev_temp = (r.ts, r.value)  # type: ignore[assignment]
            for th in self.thresholds[r.zone]:
                if th.quantity is qty:
                    events += self._threshold(th, r, prefix)
        return events

    def _prefix(self, r: Reading) -> str:
        """`zone/sensor/`, the start of every track key of a reading's sensor (made once per pair)."""
        key = (r.zone, r.sensor)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self._prefixes[key] = f"{r.zone}/{r.sensor}/"
        return prefix

    def tick(self, now: float) -> list[RuleEvent]:
        """Time-driven conditions: sensors that went silent."""
        events: list[RuleEvent] = []
        for sid, st in self.sensors.items():
            zone = self.sensor_zone[sid]
            if not self.limits[zone].no_data:
                continue
            key = f"{zone}/{sid}/no_data"
            tr = self.tracks.get(key)
            if (tr is None or tr.state == "idle") and now - st.last_seen >= self.stale_after[sid] \
                    and not self.muted(zone, now):
                self.tracks[key] = _Track("firing", st.last_seen)
                events.append(RuleEvent("fire", key, zone, sid, "no_data", "warning", now, st.last_seen, None))
        return events

    # -- conditions

    def _threshold(self, th: Threshold, r: Reading, prefix: str | None = None) -> list[RuleEvent]:
        assert r.value is not None
        key = (prefix or self._prefix(r)) + th.kind
        v, ts = r.value, r.ts
        tr = self.tracks.get(key)
        if (tr is None or tr.state == "idle") and not th.out(v):
            return []  # the common case, inside the limit with nothing open: no mute or defrost look-up
        if tr is None:
            tr = self.tracks[key] = _Track()
        ev = []
        quiet = self._suppressed(r.zone, th.kind, ts)
        if tr.state == "pending" and quiet:
            tr.state = "idle"
            return [self._event("cancel", key, r, th.kind, th.severity, tr, th.limit, f"muted: {quiet}")]
        if tr.state == "idle" and th.out(v) and not quiet:
            tr.state, tr.started, tr.peak, tr.in_since = "pending", ts, v, None
            ev.append(self._event("pending", key, r, th.kind, th.severity, tr, th.limit, self._band_detail(th)))
        if tr.state in ("pending", "firing") and th.out(v):
            tr.peak = v if tr.peak is None else (max(tr.peak, v) if th.above else min(tr.peak, v))
        if tr.state == "pending":
            if not th.out(v):
                tr.state = "idle"
                ev.append(self._event("cancel", key, r, th.kind, th.severity, tr, th.limit))
            elif ts - tr.started >= th.delay:
                tr.state = "firing"
                ev.append(self._event("fire", key, r, th.kind, th.severity, tr, th.limit, self._band_detail(th)))
        elif tr.state == "firing":
            if th.back(v):
                tr.in_since = ts if tr.in_since is None else tr.in_since
                if ts - tr.in_since >= th.clear_delay:
                    tr.state = "idle"
                    ev.append(self._event("clear", key, r, th.kind, th.severity, tr, th.limit))
            else:
                tr.in_since = None
        return self._peak_moved(ev, key, r, th, tr)

    def _peak_moved(self, ev: list[RuleEvent], key: str, r: Reading, th: Threshold, tr: _Track) -> list[RuleEvent]:
        """Events of this reading, plus a `peak` event when the open alarm's peak has moved enough (PEAK_STEP,
        PEAK_EVERY) and no transition carries it already."""
        if ev:
            tr.peak_stored, tr.peak_at = tr.peak, r.ts
            return ev
        if tr.state == "idle" or tr.peak is None or tr.peak == tr.peak_stored:
            return ev
        moved = abs(tr.peak - tr.peak_stored) if tr.peak_stored is not None else float("inf")
        if moved >= PEAK_STEP or r.ts - tr.peak_at >= PEAK_EVERY:
            tr.peak_stored, tr.peak_at = tr.peak, r.ts
            return [self._event("peak", key, r, th.kind, th.severity, tr, th.limit)]
        return ev

    @staticmethod
    def _band_detail(th: Threshold) -> str:
        return f"detail.band|low={th.low:g}|high={th.limit:g}" if isinstance(th, Band) else ""

    def _exposure(self, r: Reading, st: _SensorState) -> list[RuleEvent]:
        """Time beyond each exposure value within its rolling window (sample-and-hold)."""
        assert r.value is not None
        rules = self.limits[r.zone].exposure
        prev = st.prev_temp
        events: list[RuleEvent] = []
        for i, rule in enumerate(rules):
            spans = st.exposure.setdefault(i, collections.deque())
            if prev is not None:
                held = min(r.ts - prev[0], self.stale_after[r.sensor])
                beyond = prev[1] > rule.above if rule.above is not None else prev[1] < rule.below  # type: ignore[operator]
                if beyond and held > 0:
                    spans.append((prev[0], held))
            while spans and spans[0][0] < r.ts - rule.window:
                spans.popleft()
            total = sum(d for _, d in spans)
            key = f"{r.zone}/{r.sensor}/exposure:{i}"
            limit = rule.above if rule.above is not None else rule.below
            detail = f"detail.exposure|total={round(total / 60)}|window={rule.window / 3600:g}"
            if total >= rule.total:
                events += self._fire(key, r, "exposure", limit, detail, started=r.ts - total)
            elif total < 0.9 * rule.total:
                events += self._clear(key, r.ts, r.value)
        return events

    def _rate(self, r: Reading, st: _SensorState) -> list[RuleEvent]:
        """Least-squares slope over the rule's window; fires above the limit, clears below half of it."""
        rule = self.limits[r.zone].rate
        if rule is None:
            return []
        assert r.value is not None
        st.recent.append((r.ts, r.value))
        while st.recent and st.recent[0][0] < r.ts - rule.over:
            st.recent.popleft()
        pts = list(st.recent)
        key = f"{r.zone}/{r.sensor}/rate"
        if len(pts) < 3 or pts[-1][0] - pts[0][0] < 0.8 * rule.over:
            return []
        n = len(pts)
        mt = sum(t for t, _ in pts) / n
        mv = sum(v for _, v in pts) / n
        den = sum((t - mt) ** 2 for t, _ in pts)
        slope = 3600 * sum((t - mt) * (v - mv) for t, v in pts) / den if den else 0.0
        if slope > rule.rise_per_hour and not self._suppressed(r.zone, "rate", r.ts):
            return self._fire(key, r, "rate", rule.rise_per_hour, f"detail.rate|rate={slope:.1f}", started=pts[0][0])
        if slope < rule.rise_per_hour / 2:
            return self._clear(key, r.ts, r.value)
        return []

    def box(self, what: str, bad: bool, now: float, detail: str) -> list[RuleEvent]:
        """Box-health conditions (disk, clock, uplink) raised by the daemon's own checks."""
        key = f"_site/box/{what}"
        tr = self.tracks.get(key)
        if bad and (tr is None or tr.state == "idle"):
            self.tracks[key] = _Track("firing", now)
            return [RuleEvent("fire", key, "_site", "box", "box_health", "warning", now, now, None, None, None, detail)]
        if not bad and tr is not None and tr.state == "firing":
            tr.state = "idle"
            return [RuleEvent("clear", key, "_site", "box", "box_health", "warning", now, tr.started, None)]
        return []

    def _stuck(self, r: Reading, st: _SensorState, prefix: str | None = None) -> list[RuleEvent]:
        """The same value for `stuck_after`. A silence longer than the sensor's no-data limit restarts the
        window: two equal readings a day apart say nothing about a frozen sensor (it was silent, and the
        no-data alarm covers that), and `fault.stuck|minutes=1440` after one reading each side was false."""
        lim = self.limits[r.zone]
        assert r.value is not None
        q = r.quantity._value_
        key = f"{prefix or self._prefix(r)}stuck:{q}"
        prev = st.same_value.get(q)
        if prev is None or prev[0] != r.value or r.ts - prev[2] > self.stale_after[r.sensor]:
            st.same_value[q] = (r.value, r.ts, r.ts)
            return self._clear(key, r.ts, r.value)
        st.same_value[q] = (prev[0], prev[1], r.ts)
        if lim.stuck_after is not None and r.ts - prev[1] >= lim.stuck_after:
            minutes = round((r.ts - prev[1]) / 60)
            return self._fire(key, r, "sensor_fault", None, f"fault.stuck|minutes={minutes}", started=prev[1])
        return []

    def _defrost(self, r: Reading) -> None:
        """Remember when the controller's defrost began or ended (its first report of each)."""
        zone = self.controller_defrost.setdefault(r.zone, {})
        on = bool(r.value)
        prev = zone.get(r.sensor)
        if prev is None or prev[0] != on:
            zone[r.sensor] = (on, r.ts)

    def _controller(self, r: Reading) -> list[RuleEvent]:
        """The controller's own alarm register: any bit set is an alarm of the room (the controller sees its
        compressor, its probes, its door); all clear ends it."""
        if not r.good:
            return []
        assert r.value is not None
        key = f"{r.zone}/{r.sensor}/controller_alarm"
        if r.value:
            return self._fire(key, r, "controller_alarm", None, f"controller.alarm|code=0x{int(r.value):04X}")
        return self._clear(key, r.ts, r.value)

    def _battery(self, r: Reading) -> list[RuleEvent]:
        """Low battery, from the percent or the voltage the device reports; cleared once the battery is
        clearly above the limit again (changed), not by a warm afternoon lifting a tired cell's voltage by 0.01 V."""
        clear = BATTERY_CLEAR.get(r.quantity)
        if clear is None or not r.good:
            return []
        low = self.battery_low[r.sensor]
        limit = low.percent if r.quantity is Quantity.BATTERY else low.volts
        if limit is None:
            return []
        assert r.value is not None
        key = f"{r.zone}/{r.sensor}/battery_low:{r.quantity.value}"
        if r.value < limit:
            detail = f"device.{r.quantity.value}|value={r.value:g}|limit={limit:g}"
            return self._fire(key, r, "battery_low", limit, detail)
        if r.value >= limit + clear:
            return self._clear(key, r.ts, r.value)
        return []

    def _fire(
        self, key: str, r: Reading, kind: str, limit: float | None, detail: str, started: float | None = None
    ) -> list[RuleEvent]:
        tr = self.tracks.get(key)
        if tr is not None and tr.state == "firing":
            return []
        tr = self.tracks[key] = _Track("firing", r.ts if started is None else started)
        return [self._event("fire", key, r, kind, "warning", tr, limit, detail)]

    def _clear(self, key: str, ts: float, value: float | None) -> list[RuleEvent]:
        tr = self.tracks.get(key)
        if tr is None or tr.state != "firing":
            return []
        tr.state = "idle"
        zone, sensor, kind = key.split("/", 2)
        kind = {"no_data": "no_data", "rate": "rate"}.get(kind, kind.split(":")[0])
        kind = {"fault": "sensor_fault", "stuck": "sensor_fault"}.get(kind, kind)
        return [RuleEvent("clear", key, zone, sensor, kind, "warning", ts, tr.started, value)]

    @staticmethod
    def _event(
        action: Action, key: str, r: Reading, kind: str, severity: str, tr: _Track, limit: float | None,
        detail: str = "",
    ) -> RuleEvent:
        return RuleEvent(action, key, r.zone, r.sensor, kind, severity, r.ts, tr.started, r.value, limit, tr.peak,
                         detail)
