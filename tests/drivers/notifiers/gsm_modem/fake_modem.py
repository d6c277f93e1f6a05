"""The modem's side of 3GPP TS 27.005 (PDU mode), for one end of a socat pty pair.

Speaks what SIM800 / Quectel EC2x answer to the commands the notifier uses: echo until ATE0,
OK/ERROR/+CMS ERROR, the `> ` prompt of AT+CMGS, `+CMGS: <mr>`, `+CMTI`, `+CMGR`/`+CMGL` from a
stored-message table, `+CDS` reports, CSQ/CREG/CEREG/COPS answers, and failure modes: `hung`
(answers nothing; AT+CFUN=1,1 reboots it unless `deaf` too), `cmgs_error`, `hang_after_submit` (takes
the next PDU, which counts as sent, then answers nothing: the modem died between the network and the answer),
and `on_submit` (takes the next PDU, then runs the test's hook instead of answering, e.g. pulls the plug).

Run alone against a pty for manual trials: `python fake_modem.py /tmp/ttyMODEM`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import serial


class FakeModem:
    """A scripted modem; tests read `sent`, `deleted`, `commands` and flip the failure flags."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sent: list[tuple[int, str]] = []  # (AT+CMGS length, PDU hex) in order
        self.commands: list[str] = []
        self.storage: dict[int, tuple[int, str]] = {}  # SIM index -> (stat, PDU hex)
        self.deleted: list[int] = []
        self.next_mr = 1
        self.echo = True
        self.hung = False  # answers nothing ...
        self.deaf = False  # ... and ignores AT+CFUN=1,1 too (only power would help)
        self.cmgs_error = False
        self.hang_after_submit = False
        self.on_submit: Callable[[], None] | None = None
        self.boots = 0
        self.csq = "21,0"
        self.creg = "0,1"
        self.cereg = "0,1"
        self.cops = '0,0,"CHINA MOBILE",7'
        self.pin: str | None = None  # set: the SIM asks for this PIN until AT+CPIN="<pin>"
        self.inside_csq = ""  # unsolicited text to slip between the +CSQ line and its OK
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ser = serial.Serial(path, 115200, timeout=0.05)
        self._thread = threading.Thread(target=self._loop, name="fake-modem", daemon=True)

    def start(self) -> FakeModem:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._ser.close()

    # -- what a test makes the network do

    def deliver(self, pdu_hex: str) -> int:
        """A message arrives: store it and announce `+CMTI: "SM",<index>`."""
        with self._lock:
            index = max(self.storage, default=0) + 1
            self.storage[index] = (0, pdu_hex)
        self._send(f'\r\n+CMTI: "SM",{index}\r\n')
        return index

    def status_report(self, pdu_hex: str) -> None:
        """A delivery report comes in directly (AT+CNMI ds=1): `+CDS: <length>` then the PDU."""
        self._send(f"\r\n+CDS: {len(pdu_hex) // 2 - 1}\r\n{pdu_hex}\r\n")

    # -- the device

    def _send(self, text: str) -> None:
        self._ser.write(text.encode("latin-1"))
        self._ser.flush()

    def _loop(self) -> None:
        buf = b""
        pdu_for: int | None = None
        while not self._stop.is_set():
            try:
                buf += self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError):
                return  # the pty pair went away (the "unplugged" tests): the device is gone too
            if pdu_for is not None:  # text entry after the "> " prompt
                if b"\x1b" in buf:  # ESC cancels
                    buf, pdu_for = buf.split(b"\x1b", 1)[1], None
                    continue
                if b"\x1a" not in buf:
                    continue
                raw, buf = buf.split(b"\x1a", 1)
                self._submit(pdu_for, raw.decode("latin-1").strip())
                pdu_for = None
                continue
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                cmd = raw.decode("latin-1").replace("\x1b", "").replace("\x1a", "").strip()  # stray ESC/^Z: ignored
                if cmd:
                    pdu_for = self._command(cmd)
                    if pdu_for is not None:
                        break

    def _submit(self, length: int, pdu_hex: str) -> None:
        if self.hung:
            return
        if self.echo:
            self._send(pdu_hex)
        smsc_octets = int(pdu_hex[:2], 16) + 1
        if len(pdu_hex) // 2 - smsc_octets != length:
            self._send("\r\n+CMS ERROR: 304\r\n")  # invalid PDU mode parameter: length disagrees
            return
        if self.cmgs_error:
            self._send("\r\n+CMS ERROR: 500\r\n")
            return
        with self._lock:
            self.sent.append((length, pdu_hex))
            mr, self.next_mr = self.next_mr, (self.next_mr + 1) % 256
        if self.hang_after_submit:
            self.hang_after_submit, self.hung = False, True
            return
        if self.on_submit is not None:
            hook, self.on_submit = self.on_submit, None
            hook()
            return
        self._send(f"\r\n+CMGS: {mr}\r\n\r\nOK\r\n")

    def _reboot(self) -> None:
        self.hung = False
        self.echo = True
        self.boots += 1
        self._send("\r\nOK\r\n")
        time.sleep(0.05)
        self._send("\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")

    # long: one branch per AT command, like the modem's own table; split, the table would be harder to check
    def _command(self, cmd: str) -> int | None:  # noqa: C901
        """Answer one command line; returns the CMGS length when the prompt was given."""
        self.commands.append(cmd)
        up = cmd.upper()
        if self.hung:
            if up == "AT+CFUN=1,1" and not self.deaf:
                self._reboot()
            return None
        if self.echo:
            self._send(cmd + "\r")
        ok = "\r\nOK\r\n"
        if up in ("AT", "AT+CMEE=1", "AT+CMGF=0") or up.startswith("AT+CNMI="):
            self._send(ok)
        elif up == "ATE0":
            self.echo = False
            self._send(ok)
        elif up.startswith("AT+CPMS="):
            with self._lock:
                used = len(self.storage)
            self._send(f"\r\n+CPMS: {used},30,{used},30,{used},30\r\n{ok}")
        elif up == "AT+CPMS?":
            with self._lock:
                used = len(self.storage)
            self._send(f'\r\n+CPMS: "SM",{used},30,"SM",{used},30,"SM",{used},30\r\n{ok}')
        elif up == "AT+CPIN?":
            self._send(f"\r\n+CPIN: {'SIM PIN' if self.pin else 'READY'}\r\n{ok}")
        elif up.startswith("AT+CPIN="):
            if self.pin and cmd.split("=", 1)[1].strip('"') == self.pin:
                self.pin = None
                self._send(ok)
            else:
                self._send("\r\n+CME ERROR: 16\r\n")  # incorrect password
        elif up == "AT+CSQ":
            self._send(f"\r\n+CSQ: {self.csq}\r\n{self.inside_csq}{ok}")
        elif up == "AT+CREG?":
            self._send(f"\r\n+CREG: {self.creg}\r\n{ok}")
        elif up == "AT+CEREG?":
            self._send(f"\r\n+CEREG: {self.cereg}\r\n{ok}")
        elif up == "AT+COPS?":
            self._send(f"\r\n+COPS: {self.cops}\r\n{ok}")
        elif up == "AT+CFUN=1,1":
            self._reboot()
        elif up.startswith("AT+CMGS="):
            self._send("\r\n> ")
            return int(up.split("=", 1)[1])
        elif up.startswith("AT+CMGR="):
            index = int(up.split("=", 1)[1])
            with self._lock:
                entry = self.storage.get(index)
                if entry is not None:
                    self.storage[index] = (1, entry[1])  # now "received read"
            if entry is None:
                self._send(ok)
            else:
                self._send(f"\r\n+CMGR: {entry[0]},,{len(entry[1]) // 2 - 1}\r\n{entry[1]}\r\n{ok}")
        elif up.startswith("AT+CMGL="):
            with self._lock:
                rows = sorted(self.storage.items())
            body = "".join(f"\r\n+CMGL: {i},{stat},,{len(p) // 2 - 1}\r\n{p}" for i, (stat, p) in rows)
            self._send(f"{body}\r\n{ok}")
        elif up.startswith("AT+CMGD="):
            index = int(up.split("=", 1)[1].split(",")[0])
            with self._lock:
                self.storage.pop(index, None)
                self.deleted.append(index)
            self._send(ok)
        else:
            self._send("\r\nERROR\r\n")
        return None


if __name__ == "__main__":
    modem = FakeModem(sys.argv[1]).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        modem.stop()
