"""`type: gsm_modem`: SMS through a GSM/4G modem on a serial port, in PDU mode; works with the internet down.

`send()` encodes the text (UCS2 for Chinese, multi-part with a concatenation header) and issues one
`AT+CMGS` per part. `run()` listens for `+CMTI` (a reply such as `ACK 17`: read, hand to the core, then
delete) and `+CDS` (a delivery report), checks registration and signal periodically, resets a modem
that stops answering, and reopens a port that went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources

from daemon.ports.errors import NotifierError
from daemon.ports.notify import Incoming, Message, Notifier, NotifierBase, NotifierContext
from daemon.ports.retry import Backoff
from drivers.notifiers.gsm_modem import pdu
from drivers.notifiers.gsm_modem.at import AtCommandError, AtError, AtPort, AtPortError, AtTimeout, Response, Urc
from drivers.notifiers.gsm_modem.schema import GsmModemConfig
from drivers.registry import notifier

__all__ = ["SAMPLE_YAML", "GsmModemConfig", "GsmModemNotifier"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `notifiers:` list item showing every option with its default."""

log = logging.getLogger("coldchain.notify.gsm_modem")

_REG_STATES = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming",
               6: "home (SMS only)", 7: "roaming (SMS only)"}
_CMTI = re.compile(r'^\+CMTI:\s*"?(\w+)"?\s*,\s*([0-9]{1,9})(?=\s*(?:,|$))')
_NUMBER = re.compile(r"\s*([0-9]{1,9})\s*")
_BOOT_URCS = ("RDY", "SMS Ready", "+CFUN: 1")
_PENDING_REPORTS = 512  # outgoing parts remembered for matching delivery reports (TP-MR wraps at 256)


@dataclass
class _Lost:
    reason: str


@dataclass
class _Reset:
    reason: str


@dataclass
class _Scan:
    """Read every message already stored on the SIM (replies that came while we were down)."""


@dataclass
class _Outgoing:
    """One sent message, to combine the status reports of its parts into one `on_delivery` call."""

    ref: str
    parts: set[int]
    reports: dict[int, pdu.StatusReport] = field(default_factory=dict)


@dataclass
class _Parts:
    """Parts of a concatenated incoming message seen so far: seq -> (SIM index, text)."""

    total: int
    ts: float
    got: dict[int, tuple[int, str]] = field(default_factory=dict)
    first_seen: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        """The parts in order; a part that never came shows as an ellipsis."""
        return "".join(self.got[s][1] if s in self.got else "…" for s in range(1, self.total + 1))


def number(field: str) -> int | None:
    """A small non-negative integer as modems print it; None for anything else (noise, `²`, 5,000 digits)."""
    m = _NUMBER.fullmatch(field)
    return int(m.group(1)) if m else None


def signal_dbm(rssi: int) -> int | None:
    """AT+CSQ <rssi> to dBm (27.007: 0 = -113 or less, 31 = -51 or more, 99 = unknown)."""
    if rssi == 99 or not 0 <= rssi <= 31:
        return None
    return -113 + 2 * rssi


def status_text(status: int) -> str:
    """Words for a TP-Status (23.040 9.2.3.15)."""
    names = {0x00: "delivered", 0x01: "forwarded, delivery not confirmed", 0x02: "replaced by the SMS centre",
             0x20: "congestion, still trying", 0x21: "recipient busy, still trying",
             0x22: "no response from recipient, still trying", 0x24: "recipient out of service, still trying",
             0x40: "remote procedure error", 0x41: "incompatible destination", 0x42: "connection rejected",
             0x45: "quality of service not available", 0x46: "error in recipient",
             0x60: "congestion, gave up", 0x61: "recipient busy, gave up",
             0x62: "no response from recipient, gave up", 0x64: "recipient out of service, gave up",
             0x65: "validity period expired"}
    if status in names:
        return names[status]
    if status < 0x20:
        return "completed"
    return "temporary error, still trying" if status < 0x40 else "permanent error"


@notifier("gsm_modem")
class GsmModemNotifier(Notifier):
    """One modem; `send()` and `run()` share the port through one command lock."""

    Config = GsmModemConfig

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        super().__init__(config, ctx)
        if not isinstance(config, GsmModemConfig):
            raise TypeError("GsmModemNotifier needs a GsmModemConfig")
        self.cfg: GsmModemConfig = config
        self._port: AtPort | None = None
        self._lock = asyncio.Lock()
        self._events: asyncio.Queue[Urc | _Lost | _Reset | _Scan] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self._running = False
        self._resetting = False
        self._consecutive_timeouts = 0
        self._outgoing: dict[int, _Outgoing] = {}
        self._parts: dict[tuple[str, int, int], _Parts] = {}
        self._counts = {"sent": 0, "parts": 0, "received": 0, "reports": 0, "timeouts": 0, "resets": 0,
                        "reopens": 0, "send_errors": 0, "scans": 0, "incoming_errors": 0, "bad_input": 0}
        self._last_error: str | None = None
        self._radio: dict[str, object] = {}

    @property
    def ready(self) -> bool:
        """The port is open and the modem initialised (PDU mode, reports routed)."""
        return self._ready.is_set()

    @property
    def counts(self) -> dict[str, int]:
        """Sent, received, reports, timeouts, resets, reopens ... since start (also in `health()`)."""
        return dict(self._counts)

    # -- port lifecycle

    def _fail(self, what: str, exc: BaseException, *, maybe_sent: bool = False) -> NotifierError:
        """A NotifierError for the outbox; AT errors already start with the port name."""
        self._last_error = f"{what}: {exc}"
        if maybe_sent:
            return NotifierError(self.source, f"{what}: {exc}; the PDU was handed over, so the modem may have sent it",
                                 maybe_sent=True)
        return NotifierError(self.source, f"{what}: {exc}")

    def _bad_input(self, what: str) -> None:
        """Something the modem printed that cannot be used: counted and logged naming the port."""
        self._counts["bad_input"] += 1
        log.warning("%s: bad input from the modem on %s: %s", self.source, self.cfg.port, what)

    def _post(self, event: Urc | _Lost | _Reset | _Scan) -> None:
        """Hand an event from the AT thread to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._events.put_nowait, event)

    async def _cmd(self, command: str, timeout: float | None = None, *, pdu_hex: str | None = None) -> Response:
        """One AT command; callers hold `_lock`. Counts consecutive timeouts and asks for a reset after N."""
        port = self._port
        if port is None:
            raise AtPortError(f"{self.cfg.port}: port is not open")
        future = port.submit(command, timeout or self.cfg.command_timeout, pdu=pdu_hex,
                             prompt_timeout=self.cfg.command_timeout)
        try:
            resp: Response = await asyncio.wrap_future(future)
        except AtTimeout:
            self._consecutive_timeouts += 1
            self._counts["timeouts"] += 1
            if self._consecutive_timeouts >= self.cfg.max_timeouts and not self._resetting:
                self._events.put_nowait(_Reset(f"{self._consecutive_timeouts} consecutive timeouts"))
            raise
        except AtCommandError:
            self._consecutive_timeouts = 0
            raise
        self._consecutive_timeouts = 0
        return resp

    async def _open(self) -> None:
        """Open the port and initialise the modem; callers hold `_lock`."""
        self._loop = asyncio.get_running_loop()
        await self._close_port()
        port = AtPort(self.cfg.port, self.cfg.baudrate, rtscts=self.cfg.rtscts, xonxoff=self.cfg.xonxoff,
                      on_urc=self._post, on_lost=lambda reason: self._post(_Lost(reason)))
        await asyncio.wrap_future(port.start())
        self._port = port
        try:
            await self._init_modem()
        except BaseException:
            await self._close_port()
            raise
        self._consecutive_timeouts = 0
        self._ready.set()
        self._events.put_nowait(_Scan())
        log.info("%s: modem on %s ready", self.source, self.cfg.port)

    async def _init_modem(self) -> None:
        """ATE0, CMEE, PIN, PDU mode, SIM storage, and direct +CDS reports (ds=1: the EC25 +CDSI/SR bug)."""
        for attempt in range(3):  # the first AT after a boot or a baud change is often lost
            try:
                await self._cmd("AT")
                break
            except AtTimeout:
                if attempt == 2:
                    raise
        await self._cmd("ATE0")
        await self._cmd("AT+CMEE=1")
        cpin = (await self._cmd("AT+CPIN?")).prefixed("+CPIN:")
        state = cpin[0] if cpin else "READY"
        if state == "SIM PIN":
            if self.cfg.pin_file is None:
                raise AtCommandError(f"{self.cfg.port}: the SIM asks for a PIN but no pin_file is set", state)
            try:
                pin = self.cfg.pin_file.read_text(encoding="ascii").strip()
            except OSError as exc:
                raise AtCommandError(f"{self.cfg.port}: cannot read pin_file: {exc}", state) from exc
            await self._cmd(f'AT+CPIN="{pin}"')
        elif state != "READY":
            raise AtCommandError(f"{self.cfg.port}: SIM not usable: +CPIN: {state}", state)
        await self._cmd("AT+CMGF=0")
        await self._cmd('AT+CPMS="SM","SM","SM"')
        ds = 1 if self.cfg.request_delivery_reports else 0
        await self._cmd(f"AT+CNMI=2,1,0,{ds},0")

    async def _close_port(self) -> None:
        port, self._port = self._port, None
        self._ready.clear()
        if port is not None:
            await asyncio.to_thread(port.close)

    async def _ensure_ready(self) -> None:
        """Open on first use when `run()` is not supervising; else wait briefly for `run()` to get there."""
        if self._ready.is_set() and self._port is not None and self._port.alive:
            return
        if self._resetting:
            raise NotifierError(self.source, f"{self.cfg.port}: modem is being reset ({self._last_error})")
        if self._running:
            try:
                async with asyncio.timeout(self.cfg.command_timeout):  # not wait_for: see run()
                    await self._ready.wait()
            except TimeoutError:
                raise NotifierError(self.source, f"{self.cfg.port}: modem not ready ({self._last_error})") from None
            return
        async with self._lock:
            try:
                await self._open()
            except AtError as exc:
                raise self._fail("cannot initialise modem", exc) from exc

    # -- sending

    async def send(self, message: Message) -> str | None:
        """Send all parts; return their TP-MRs (`"17"` or `"17,18"`), the key of later delivery reports."""
        try:
            parts = pdu.encode_submit(
                message.address, message.text, reference=message.outbox_id & 0xFF,
                request_status_report=self.cfg.request_delivery_reports,
                validity=timedelta(seconds=self.cfg.validity) if self.cfg.validity else None, smsc=self.cfg.smsc,
            )
        except pdu.PduError as exc:
            raise NotifierError(self.source, f"message {message.outbox_id} to {message.address}: {exc}") from exc
        await self._ensure_ready()
        mrs: list[int] = []
        async with self._lock:
            if self._port is None or not self._port.alive:  # a reset or a lost port got the lock first
                raise NotifierError(self.source, f"{self.cfg.port}: modem not ready ({self._last_error})")
            for i, part in enumerate(parts, start=1):
                try:
                    resp = await self._cmd(f"AT+CMGS={part.tpdu_length}", self.cfg.send_timeout, pdu_hex=part.hex)
                except AtError as exc:
                    self._counts["send_errors"] += 1
                    # the modem had this part and never answered: the person may have it, never send it again here
                    raise self._fail(f"SMS to {message.address} (part {i}/{len(parts)})", exc,
                                     maybe_sent=exc.submitted) from exc
                values = resp.prefixed("+CMGS:")
                mr = number(values[0].split(",")[0]) if values else None
                if mr is None:  # sent all the same (OK came); only its delivery report cannot be matched
                    self._bad_input(f"SMS {message.outbox_id} part {i}: no message reference in {resp.lines!r}")
                mrs.append(-1 if mr is None else mr)
        self._counts["sent"] += 1
        self._counts["parts"] += len(parts)
        ref = ",".join(str(m) for m in mrs)
        if self.cfg.request_delivery_reports and all(m >= 0 for m in mrs):
            out = _Outgoing(ref, set(mrs))
            for m in mrs:
                self._outgoing[m] = out
            while len(self._outgoing) > _PENDING_REPORTS:
                self._outgoing.pop(next(iter(self._outgoing)))
        log.info("%s: SMS %d to %s sent in %d part(s), ref %s", self.source, message.outbox_id, message.address,
                 len(parts), ref)
        return ref

    # -- the supervised loop

    async def run(self) -> None:
        """Keep the modem open and healthy; handle replies and delivery reports until cancelled."""
        self._running = True
        self._loop = asyncio.get_running_loop()
        backoff = Backoff(self.cfg.reopen_backoff, self.cfg.reopen_backoff_max)
        next_health = time.monotonic() + self.cfg.health_interval
        try:
            while True:
                if not self._ready.is_set():
                    try:
                        async with self._lock:
                            await self._open()
                    except AtError as exc:
                        self._last_error = f"open/init: {exc}"
                        log.warning("%s: %s; retrying in %.1f s", self.source, exc, backoff.upcoming)
                        await asyncio.sleep(backoff.next())
                        continue
                    backoff.reset()
                    self._drain_stale_resets()
                    next_health = time.monotonic()
                wait = max(0.0, next_health - time.monotonic())
                try:
                    # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that lands as the event arrives,
                    # and this loop then never ends (the daemon's stop waited forever for it).
                    async with asyncio.timeout(wait):
                        event = await self._events.get()
                except TimeoutError:
                    ok = await self._periodic_health()
                    # after a timeout, probe again soon so a hung modem reaches max_timeouts in seconds, not hours
                    again = self.cfg.health_interval if ok else min(self.cfg.health_interval, self.cfg.command_timeout)
                    next_health = time.monotonic() + again
                    continue
                await self._handle(event)
        finally:
            self._running = False

    def _drain_stale_resets(self) -> None:
        keep = []
        while not self._events.empty():
            ev = self._events.get_nowait()
            if not isinstance(ev, _Reset | _Lost):
                keep.append(ev)
        for ev in keep:
            self._events.put_nowait(ev)

    async def _handle(self, event: Urc | _Lost | _Reset | _Scan) -> None:
        try:
            if isinstance(event, _Lost):
                self._counts["reopens"] += 1
                self._last_error = event.reason
                log.warning("%s: %s lost (%s); reopening", self.source, self.cfg.port, event.reason)
                async with self._lock:
                    await self._close_port()
            elif isinstance(event, _Reset):
                await self._reset(event.reason)
            elif isinstance(event, _Scan):
                await self._scan()
            else:
                await self._on_urc(event)
        except AtError as exc:
            self._last_error = str(exc)
            log.warning("%s: %s", self.source, exc)

    async def _reset(self, reason: str) -> None:
        """A modem that stopped answering: AT+CFUN=1,1 (if it still listens), then reopen and re-initialise."""
        self._resetting = True
        self._ready.clear()
        self._counts["resets"] += 1
        self._last_error = f"reset: {reason}"
        log.warning("%s: resetting modem on %s: %s", self.source, self.cfg.port, reason)
        try:
            async with self._lock:
                with contextlib.suppress(AtError):
                    await self._cmd("AT+CFUN=1,1", self.cfg.command_timeout)
                await self._close_port()
            await asyncio.sleep(self.cfg.reset_wait)
        finally:
            self._consecutive_timeouts = 0
            self._resetting = False

    async def _on_urc(self, urc: Urc) -> None:
        line = urc.line
        if m := _CMTI.match(line):
            await self._read_stored(int(m.group(2)))
        elif line.startswith("+CMTI:"):
            self._bad_input(f"{line[:200]!r}: no SIM index to read")
        elif line.startswith("+CDS:"):
            if urc.pdu:
                self._on_pdu(urc.pdu, None)
            else:
                self._bad_input(f"{line!r} without the PDU line after it")
        elif line.startswith("+CDSI:"):
            log.warning("%s: %s: report stored instead of sent as +CDS (check AT+CNMI ds=1)", self.source, line)
        elif line.startswith(_BOOT_URCS) and not self._resetting:
            log.warning("%s: modem on %s restarted by itself (%s); re-initialising", self.source, self.cfg.port, line)
            self._ready.clear()
        else:
            log.debug("%s: unsolicited %s", self.source, line)

    async def _read_stored(self, index: int) -> None:
        async with self._lock:
            resp = await self._cmd(f"AT+CMGR={index}")
        at = next((i for i, ln in enumerate(resp.lines) if ln.startswith("+CMGR:")), None)
        if at is None or at + 1 >= len(resp.lines):
            return  # empty slot: already read and deleted
        await self._process_stored(index, resp.lines[at + 1])

    async def _scan(self) -> None:
        async with self._lock:
            resp = await self._cmd("AT+CMGL=4")
        stored: list[tuple[int, str]] = []
        lines = resp.lines
        for i, line in enumerate(lines):
            if line.startswith("+CMGL:") and i + 1 < len(lines):
                index = number(line[6:].split(",")[0])
                if index is None:
                    self._bad_input(f"{line[:200]!r}: no SIM index; the message after it is skipped")
                    continue
                stored.append((index, lines[i + 1]))
        for index, pdu_hex in stored:
            await self._process_stored(index, pdu_hex)
        self._counts["scans"] += 1

    async def _process_stored(self, index: int, pdu_hex: str) -> None:
        """Decode a stored message; hand replies to the core and delete only after the callback returned."""
        try:
            msg = pdu.decode(pdu_hex)
        except pdu.PduError as exc:
            self._bad_input(f"SIM index {index} holds an undecodable PDU {pdu_hex[:400]!r} ({exc}); deleting it")
            await self._delete([index])
            return
        if isinstance(msg, pdu.Submit):
            return  # an outgoing message someone stored on the SIM: not ours to delete
        if isinstance(msg, pdu.StatusReport):
            self._on_pdu(pdu_hex, msg)
            await self._delete([index])
            return
        if msg.concat is None or msg.concat.total <= 1:
            await self._hand_over(msg.sender, msg.text, msg.timestamp.timestamp(), [index])
            return
        key = (msg.sender, msg.concat.reference, msg.concat.total)
        parts = self._parts.setdefault(key, _Parts(msg.concat.total, msg.timestamp.timestamp()))
        parts.got[msg.concat.seq] = (index, msg.text)
        if len(parts.got) == parts.total:
            del self._parts[key]
            await self._hand_over(msg.sender, parts.text(), parts.ts, [i for i, _ in parts.got.values()])
        # else: wait for the other parts; this one stays on the SIM

    async def _hand_over(self, sender: str, text: str, ts: float, indexes: list[int]) -> None:
        """Give a reply to the core; delete it from the SIM only if the callback returned."""
        self._counts["received"] += 1
        log.info("%s: SMS from %s: %r", self.source, sender, text)
        try:
            self.ctx.on_incoming(Incoming(sender, text, ts, channel=self.config.id))
        except Exception:
            self._counts["incoming_errors"] += 1
            log.exception("%s: on_incoming failed; SMS from %s stays on the SIM", self.source, sender)
            return
        await self._delete(indexes)

    async def _delete(self, indexes: list[int]) -> None:
        async with self._lock:
            for i in indexes:
                await self._cmd(f"AT+CMGD={i}")

    async def _flush_stale_parts(self) -> None:
        """Hand over replies whose missing parts never came, so orphan parts cannot fill the SIM."""
        now = time.monotonic()
        for key, parts in list(self._parts.items()):
            if now - parts.first_seen >= self.cfg.partial_reply_timeout:
                del self._parts[key]
                log.warning("%s: reply from %s has %d of %d parts after %.0f s; handing it over incomplete",
                            self.source, key[0], len(parts.got), parts.total, now - parts.first_seen)
                await self._hand_over(key[0], parts.text(), parts.ts, [i for i, _ in parts.got.values()])

    def _on_pdu(self, pdu_hex: str, report: pdu.StatusReport | None) -> None:
        """A status report: combine the parts of one message, then tell the core once."""
        if report is None:
            try:
                decoded = pdu.decode(pdu_hex)
            except pdu.PduError as exc:
                self._bad_input(f"undecodable status report {pdu_hex[:400]!r}: {exc}")
                return
            if not isinstance(decoded, pdu.StatusReport):
                self._bad_input(f"+CDS carried a {type(decoded).__name__}, not a status report: {pdu_hex[:400]!r}")
                return
            report = decoded
        self._counts["reports"] += 1
        detail = (f"{status_text(report.status)} (TP-ST 0x{report.status:02X}) to {report.recipient} "
                  f"at {report.discharge.isoformat()}")
        if not report.final:
            log.info("%s: report for MR %d: %s", self.source, report.reference, detail)
            return
        out = self._outgoing.get(report.reference)
        if out is None:
            self._deliver(str(report.reference), report.delivered, detail)
            return
        out.reports[report.reference] = report
        if report.delivered and len(out.reports) < len(out.parts):
            return
        for m in out.parts:
            if self._outgoing.get(m) is out:
                del self._outgoing[m]
        delivered = all(r.delivered for r in out.reports.values()) and len(out.reports) == len(out.parts)
        if len(out.parts) > 1:
            detail = f"{len(out.reports)}/{len(out.parts)} parts reported; last: {detail}"
        self._deliver(out.ref, delivered, detail)

    def _deliver(self, ref: str, delivered: bool, detail: str) -> None:
        try:
            self.ctx.on_delivery(ref, delivered, detail)
        except Exception:
            log.exception("%s: on_delivery failed for ref %s", self.source, ref)

    # -- health

    async def _read_radio(self) -> dict[str, object]:
        async with self._lock:
            csq = (await self._cmd("AT+CSQ")).prefixed("+CSQ:")
            regs: dict[str, int] = {}
            for cmd in ("AT+CREG?", "AT+CEREG?"):
                try:
                    values = (await self._cmd(cmd)).prefixed(cmd[2:-1] + ":")
                except AtCommandError:
                    continue  # a 2G-only modem has no CEREG
                if values:
                    fields = values[0].split(",")
                    if len(fields) >= 2 and (stat := number(fields[1])) is not None:
                        regs[cmd[3:-1].lower()] = stat
            try:
                cops = (await self._cmd("AT+COPS?")).prefixed("+COPS:")
            except AtCommandError:
                cops = []
            try:
                cpms = (await self._cmd("AT+CPMS?")).prefixed("+CPMS:")
            except AtCommandError:
                cpms = []
        rssi = number(csq[0].split(",")[0]) if csq else None
        operator = None
        if cops and '"' in cops[0]:
            operator = cops[0].split('"')[1]
        registered = any(s in (1, 5, 6, 7) for s in regs.values())
        storage: dict[str, int] = {}
        fields = cpms[0].split(",") if cpms else []
        used, total = (number(fields[1]), number(fields[2])) if len(fields) >= 3 else (None, None)
        if used is not None and total is not None:
            storage = {"used": used, "total": total}
            if storage["total"] and storage["used"] >= storage["total"] - 2:
                log.warning("%s: SIM message storage nearly full (%d/%d): new replies may be refused",
                            self.source, storage["used"], storage["total"])
        return {"registered": registered, "sim_storage": storage,
                "registration": {k: _REG_STATES.get(v, str(v)) for k, v in regs.items()},
                "signal_dbm": signal_dbm(99 if rssi is None else rssi), "operator": operator, "checked_at": time.time()}

    async def _periodic_health(self) -> bool:
        """Read registration and signal; False when the modem did not answer in time."""
        if not self._ready.is_set():
            return True
        try:
            await self._flush_stale_parts()
            self._radio = await self._read_radio()
        except AtError as exc:
            self._last_error = f"health check: {exc}"
            log.warning("%s: health check failed: %s", self.source, exc)
            return not isinstance(exc, AtTimeout)
        if not self._radio["registered"]:
            log.warning("%s: modem not registered on the network: %s", self.source, self._radio["registration"])
        return True

    async def health(self) -> dict[str, object]:
        """Port state, registration, signal (dBm), operator and counters, read fresh when the modem is idle."""
        if not self._running and not self._ready.is_set():
            with contextlib.suppress(NotifierError):
                await self._ensure_ready()
        if self._ready.is_set() and not self._lock.locked():
            await self._periodic_health()
        state = "resetting" if self._resetting else "ready" if self._ready.is_set() else "down"
        return {"source": self.source, "port": self.cfg.port, "state": state, **self._radio, **self._counts,
                "last_error": self._last_error}

    async def close(self) -> None:
        """Release the port (the AT thread stops)."""
        await self._close_port()
