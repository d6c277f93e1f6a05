"""A small AT-command layer (3GPP TS 27.007 / 27.005) over pyserial, in one thread that owns the port.

The event loop never blocks on the serial port: `submit()` queues a command and returns a
`concurrent.futures.Future` (await it with `asyncio.wrap_future`). The thread runs one command at a
time, and between and *during* commands it routes unsolicited result codes (`+CMTI`, `+CDS`, `RING` ...)
to `on_urc`, so a new-message notice that lands in the middle of a `+CSQ` answer is not lost.

AtError
 ├── AtCommandError   the modem answered ERROR / +CME ERROR: n / +CMS ERROR: n
 ├── AtTimeout        no final result code in time (a hung modem)
 └── AtPortError      the port could not be opened or went away (USB modem unplugged)
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import serial

try:
    from termios import error as _TermiosError
except ImportError:  # not POSIX
    _TermiosError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger("coldchain.notify.gsm_modem.at")

CTRL_Z, ESC = b"\x1a", b"\x1b"
_OK_FINALS = ("OK",)
_ERROR_FINALS = ("ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE", "COMMAND NOT SUPPORT")
# Bare-word unsolicited codes: calls, and what SIM800 / Quectel print after a (re)boot.
_BARE_URCS = ("RING", "RDY", "SMS Ready", "Call Ready", "NORMAL POWER DOWN", "POWERED DOWN",
              "UNDER-VOLTAGE", "OVER-VOLTAGE", "PB DONE")
# Unsolicited codes followed by a second line holding a PDU.
_PDU_URCS = ("+CDS:", "+CMT:", "+CBM:")
_READ_SLICE = 0.05  # seconds a read may block before the thread looks at its queue again
# What a port that went away raises. pyserial does not wrap everything: flush() on an unplugged USB modem
# raises termios.error (EIO), which is neither a SerialException nor an OSError.
_PORT_ERRORS = (serial.SerialException, OSError, _TermiosError)


class AtError(Exception):
    """An AT command failed; the message names the port and the command.

    `submitted` is True when the PDU of an `AT+CMGS` had been written before the failure (no final result
    code after it, or the port went away): the modem may have sent the SMS.
    """

    def __init__(self, message: str, *, submitted: bool = False) -> None:
        super().__init__(message)
        self.submitted = submitted


class AtCommandError(AtError):
    """The modem answered with an error result code; `final` holds it (e.g. `+CMS ERROR: 500`)."""

    def __init__(self, message: str, final: str) -> None:
        super().__init__(message)
        self.final = final


class AtTimeout(AtError):
    """No final result code arrived in time."""


class AtPortError(AtError):
    """The serial port cannot be opened or stopped working."""


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code; `pdu` is the second line of `+CDS:` / `+CMT:`."""

    line: str
    pdu: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """Information lines of a successful command (without echo, URCs and the final `OK`)."""

    lines: list[str]

    def prefixed(self, prefix: str) -> list[str]:
        """Values of lines starting with `prefix` (e.g. `+CSQ:`), prefix stripped."""
        return [ln[len(prefix) :].strip() for ln in self.lines if ln.startswith(prefix)]


@dataclass
class _Request:
    command: str
    timeout: float
    pdu: str | None
    prompt_timeout: float
    future: Future[Response] = field(default_factory=Future)
    submitted: bool = False  # the PDU went out after the prompt


def response_prefix(command: str) -> str | None:
    """`AT+CSQ` / `AT+CREG?` / `AT+CMGR=3` -> `+CSQ:` / `+CREG:` / `+CMGR:`; None for basic commands like ATE0."""
    body = command[2:] if command[:2].upper() == "AT" else command
    if not body.startswith(("+", "^", "$")):
        return None
    end = len(body)
    for stop in "=?":
        i = body.find(stop)
        if i != -1:
            end = min(end, i)
    return body[:end].upper() + ":"


def is_urc(line: str, expected: str | None) -> bool:
    """Whether `line` is unsolicited while a command expecting `expected`-prefixed answers runs."""
    if line.startswith(_BARE_URCS):
        return True
    if line.startswith(("+", "^")) and ":" in line:
        prefix = line[: line.index(":") + 1]
        return prefix != expected and prefix not in ("+CME ERROR:", "+CMS ERROR:")
    return False


def _final(line: str) -> str | None:
    """'ok' / 'error' when `line` ends a command, else None."""
    if line in _OK_FINALS:
        return "ok"
    if line in _ERROR_FINALS or line.startswith(("+CME ERROR:", "+CMS ERROR:")):
        return "error"
    return None


class AtPort:
    """One modem on one serial port; all I/O happens in the port's own thread."""

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        *,
        rtscts: bool = False,
        xonxoff: bool = False,
        on_urc: Callable[[Urc], None],
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.rtscts = rtscts
        self.xonxoff = xonxoff
        self.on_urc = on_urc
        self.on_lost = on_lost
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._serial: serial.Serial | None = None
        self._buf = b""
        self._stop = threading.Event()
        self._dead: str | None = None
        self._thread: threading.Thread | None = None

    # -- public, any thread

    @property
    def alive(self) -> bool:
        """The thread runs and the port has not failed."""
        return self._thread is not None and self._thread.is_alive() and self._dead is None

    def start(self) -> Future[None]:
        """Open the port in the AT thread; the future fails with AtPortError if it cannot be opened."""
        opened: Future[None] = Future()
        self._thread = threading.Thread(target=self._main, args=(opened,), name=f"at:{self.port}", daemon=True)
        self._thread.start()
        return opened

    def submit(self, command: str, timeout: float, *, pdu: str | None = None,
               prompt_timeout: float = 5.0) -> Future[Response]:
        """Queue `command`; with `pdu`, wait for the `> ` prompt, send the PDU and Ctrl-Z (AT+CMGS)."""
        req = _Request(command, timeout, pdu, prompt_timeout)
        if not self.alive:
            req.future.set_exception(AtPortError(f"{self.port}: port is not open ({self._dead or 'not started'})"))
            return req.future
        self._requests.put(req)
        return req.future

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the port (blocks up to `timeout`; call via a thread from async code)."""
        self._stop.set()
        self._requests.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the AT thread

    def _main(self, opened: Future[None]) -> None:
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=_READ_SLICE, write_timeout=2.0,
                                         rtscts=self.rtscts, xonxoff=self.xonxoff, dsrdtr=False, exclusive=True)
        except (*_PORT_ERRORS, ValueError) as exc:
            self._dead = f"cannot open: {exc}"
            opened.set_exception(AtPortError(f"{self.port}: cannot open: {exc}"))
            return
        opened.set_result(None)
        try:
            while not self._stop.is_set():
                try:
                    req = self._requests.get_nowait()
                except queue.Empty:
                    self._idle()
                    continue
                if req is not None:
                    try:
                        self._execute(req)
                    except Exception as exc:
                        if not req.future.done():  # the port died mid-command: its caller must not wait forever
                            req.future.set_exception(AtPortError(f"{self.port}: port lost: {exc}",
                                                                 submitted=req.submitted))
                        raise
        except _PORT_ERRORS as exc:
            self._dead = f"port lost: {exc}"
            log.warning("%s: %s", self.port, self._dead)
        except Exception as exc:  # a bug here must not leave the notifier waiting on a dead thread
            self._dead = f"AT thread failed: {exc!r}"
            log.exception("%s: %s", self.port, self._dead)
        finally:
            self._fail_queued()
            with contextlib.suppress(*_PORT_ERRORS):
                self._serial.close()
            if self._dead is not None and not self._stop.is_set() and self.on_lost is not None:
                self.on_lost(self._dead)

    def _fail_queued(self) -> None:
        reason = self._dead or "port closed"
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                return
            if req is not None and req.future.set_running_or_notify_cancel():
                req.future.set_exception(AtPortError(f"{self.port}: {reason}"))

    def _idle(self) -> None:
        """Nothing to send: read whatever arrives and route it as unsolicited."""
        self._fill(time.monotonic() + _READ_SLICE)
        while (line := self._pop_line()) is not None:
            self._route_unsolicited(line, time.monotonic() + 1.0)

    def _route_unsolicited(self, line: str, deadline: float) -> None:
        if not line:
            return
        if line.startswith(_PDU_URCS):
            pdu = self._line(deadline)
            self._emit(Urc(line, pdu))
        elif is_urc(line, None):
            self._emit(Urc(line))
        else:
            log.debug("%s: ignoring stray line %r", self.port, line)

    def _emit(self, urc: Urc) -> None:
        log.debug("%s: URC %r%s", self.port, urc.line, " + PDU" if urc.pdu else "")
        try:
            self.on_urc(urc)
        except Exception:  # a bug in the consumer must not kill the port thread
            log.exception("%s: URC handler failed for %r", self.port, urc.line)

    def _write(self, data: bytes) -> None:
        assert self._serial is not None
        self._serial.write(data)
        self._serial.flush()

    def _fill(self, deadline: float) -> bool:
        """Read once (at most until `deadline`); True if bytes arrived."""
        assert self._serial is not None
        self._serial.timeout = max(0.0, min(_READ_SLICE, deadline - time.monotonic()))
        chunk = self._serial.read(max(1, self._serial.in_waiting))
        self._buf += chunk
        return bool(chunk)

    def _pop_line(self) -> str | None:
        i = self._buf.find(b"\n")
        if i == -1:
            return None
        raw, self._buf = self._buf[:i], self._buf[i + 1 :]
        return raw.strip(b"\r\n ").decode("latin-1")

    def _line(self, deadline: float) -> str | None:
        """The next non-empty line, or None at `deadline`."""
        while True:
            line = self._pop_line()
            if line:
                return line
            if line is None:
                if time.monotonic() >= deadline:
                    return None
                self._fill(deadline)

    def _prompt_or_line(self, deadline: float) -> str | None:
        """'>' when the CMGS prompt arrived (it has no line end), else the next line; None at deadline."""
        while True:
            stripped = self._buf.lstrip(b"\r\n")
            if stripped.startswith(b">"):
                self._buf = stripped[1:].lstrip(b" ")
                return ">"
            line = self._pop_line()
            if line:
                return line
            if line is None:
                if time.monotonic() >= deadline:
                    return None
                self._fill(deadline)

    def _execute(self, req: _Request) -> None:
        if not req.future.set_running_or_notify_cancel():
            return  # the caller gave up (task cancelled) before the command went out
        shown = "AT+CPIN=<hidden>" if req.command.upper().startswith("AT+CPIN=") else req.command
        # Complete lines already here belong to nobody waiting: route them before this command's answer.
        while (line := self._pop_line()) is not None:
            self._route_unsolicited(line, time.monotonic() + 0.5)
        expected = response_prefix(req.command)
        log.debug("%s: > %s", self.port, shown)
        self._write(req.command.encode("ascii") + b"\r")
        start = time.monotonic()
        lines: list[str] = []
        awaiting_prompt = req.pdu is not None
        deadline = start + (req.prompt_timeout if awaiting_prompt else req.timeout)
        while True:
            line = self._prompt_or_line(deadline) if awaiting_prompt else self._line(deadline)
            if line is None:
                if awaiting_prompt:
                    self._write(ESC)  # leave the text-entry state, or the next command becomes message text
                what = "'> ' prompt" if awaiting_prompt else "final result code"
                req.future.set_exception(AtTimeout(f"{self.port}: {shown}: no {what} within "
                                                   f"{time.monotonic() - start:.1f} s", submitted=req.submitted))
                return
            if line == ">" and awaiting_prompt:
                assert req.pdu is not None
                log.debug("%s: > <PDU %d hex digits> ^Z", self.port, len(req.pdu))
                req.submitted = True  # from here on the modem may send it, whatever happens to its answer
                self._write(req.pdu.encode("ascii") + CTRL_Z)
                awaiting_prompt = False
                deadline = time.monotonic() + req.timeout
                continue
            if line == req.command or line == req.pdu:  # echo (before ATE0 took effect)
                continue
            kind = _final(line)
            if kind == "ok":
                log.debug("%s: < %s OK", self.port, lines)
                req.future.set_result(Response(lines))
                return
            if kind == "error":
                log.debug("%s: < %s", self.port, line)
                req.future.set_exception(AtCommandError(f"{self.port}: {shown}: {line}", line))
                return
            if line.startswith(_PDU_URCS) and line[: line.index(":") + 1] != expected:
                self._emit(Urc(line, self._line(time.monotonic() + 1.0)))
            elif is_urc(line, expected):
                self._emit(Urc(line))
            else:
                lines.append(line)

