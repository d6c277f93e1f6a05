"""The AT layer against the fake modem: answers, errors, the CMGS prompt, URCs inside a response."""

from __future__ import annotations

import queue
import termios
import time
from collections.abc import Iterator

import pytest

from drivers.notifiers.gsm_modem import at
from drivers.notifiers.gsm_modem.at import AtCommandError, AtPort, AtPortError, AtTimeout, Urc, is_urc, response_prefix
from tests.drivers.notifiers.gsm_modem.conftest import PtyPair
from tests.drivers.notifiers.gsm_modem.fake_modem import FakeModem

pytestmark = pytest.mark.peer


@pytest.fixture
def urcs() -> queue.Queue[Urc]:
    return queue.Queue()


@pytest.fixture
def port(ptys: PtyPair, modem: FakeModem, urcs: queue.Queue[Urc]) -> Iterator[AtPort]:
    p = AtPort(str(ptys.client_end), on_urc=urcs.put)
    p.start().result(5)
    yield p
    p.close()


def test_prefix_and_urc_classification() -> None:
    assert response_prefix("AT+CREG?") == "+CREG:"
    assert response_prefix("AT+CMGR=3") == "+CMGR:"
    assert response_prefix("AT+CSQ") == "+CSQ:"
    assert response_prefix("ATE0") is None
    assert is_urc('+CMTI: "SM",3', "+CSQ:")
    assert not is_urc("+CREG: 0,1", "+CREG:")
    assert is_urc("+CREG: 1", None)
    assert is_urc("RING", "+CSQ:")
    assert not is_urc("+CMS ERROR: 500", "+CMGS:")
    assert not is_urc("0791448720003023240DD0E474D81C0EBB010000111011315214000BE474D81C0EBB5DE3771B", "+CMGR:")


def test_echo_is_dropped_and_answers_come_back(port: AtPort, modem: FakeModem) -> None:
    assert port.submit("AT", 2).result(5).lines == []  # echo "AT" is still on here
    assert port.submit("ATE0", 2).result(5).lines == []
    assert port.submit("AT+CSQ", 2).result(5).prefixed("+CSQ:") == ["21,0"]


def test_error_result_codes(port: AtPort) -> None:
    with pytest.raises(AtCommandError, match=r"AT\+BOGUS: ERROR") as info:
        port.submit("AT+BOGUS", 2).result(5)
    assert info.value.final == "ERROR"


def test_cmgs_prompt_then_pdu_then_mr(port: AtPort, modem: FakeModem) -> None:
    pdu = "0001020D91683108108300F0000022416650DA04C9DFEF760C44EDC564AEDA10E4C30D5D206919CECE8382C325"
    resp = port.submit("AT+CMGS=44", 5, pdu=pdu).result(10)
    assert resp.prefixed("+CMGS:") == ["1"]
    assert modem.sent == [(44, pdu)]
    modem.cmgs_error = True
    with pytest.raises(AtCommandError, match=r"\+CMS ERROR: 500"):
        port.submit("AT+CMGS=44", 5, pdu=pdu).result(10)


def test_urc_in_the_middle_of_a_response_goes_to_the_queue(port: AtPort, modem: FakeModem,
                                                           urcs: queue.Queue[Urc]) -> None:
    modem.inside_csq = '\r\n+CMTI: "SM",4\r\n\r\n+CDS: 25\r\n0006D60B911326880736F4111011719551401110117195714000\r\n'
    resp = port.submit("AT+CSQ", 2).result(5)
    assert resp.lines == ["+CSQ: 21,0"]
    assert urcs.get(timeout=5) == Urc('+CMTI: "SM",4')
    assert urcs.get(timeout=5) == Urc("+CDS: 25", "0006D60B911326880736F4111011719551401110117195714000")


def test_unsolicited_between_commands(port: AtPort, modem: FakeModem, urcs: queue.Queue[Urc]) -> None:
    modem.deliver("00040D91683108108300F00008421122010000230C00410043004B002065365230")
    assert urcs.get(timeout=5) == Urc('+CMTI: "SM",1')


def test_silent_modem_times_out_and_the_port_stays_usable(port: AtPort, modem: FakeModem) -> None:
    modem.hung = True
    with pytest.raises(AtTimeout, match="no final result code"):
        port.submit("AT", 0.3).result(5)
    with pytest.raises(AtTimeout, match="prompt"):
        port.submit("AT+CMGS=44", 5, pdu="00", prompt_timeout=0.3).result(5)
    modem.hung = False
    assert port.submit("AT", 2).result(5).lines == []


def test_lost_port_fails_commands(ptys: PtyPair, modem: FakeModem, port: AtPort) -> None:
    lost: queue.Queue[str] = queue.Queue()
    port.on_lost = lost.put
    ptys.stop()
    assert "port lost" in lost.get(timeout=5)
    with pytest.raises(AtPortError, match="not open"):
        port.submit("AT", 1).result(5)


def test_missing_port_cannot_open(ptys: PtyPair) -> None:
    with pytest.raises(AtPortError, match="cannot open"):
        AtPort(str(ptys.client_end) + "-nope", on_urc=lambda _u: None).start().result(5)


def test_port_lost_in_the_middle_of_a_command_fails_that_command(ptys: PtyPair, modem: FakeModem,
                                                                 port: AtPort) -> None:
    modem.hung = True
    pending = port.submit("AT+CSQ", 30)
    ptys.stop()
    with pytest.raises(AtPortError, match="port lost"):
        pending.result(10)


class UnpluggedDuringThePdu:
    """pyserial's POSIX port whose USB modem goes away as the PDU is written: flush() (tcdrain) raises
    termios.error, which is neither a SerialException nor an OSError."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        self.timeout = 0.05
        self.out = b""
        self.pdu_written = False

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def read(self, size: int = 1) -> bytes:
        if not self.out:
            time.sleep(0.01)
            return b""
        data, self.out = self.out[:size], self.out[size:]
        return data

    def write(self, data: bytes) -> int:
        if data.startswith(b"AT+CMGS="):
            self.out += b"\r\n> "
        elif data.endswith(b"\x1a"):
            self.pdu_written = True
        return len(data)

    def flush(self) -> None:
        if self.pdu_written:
            raise termios.error(5, "Input/output error")

    def close(self) -> None:
        pass


def test_port_gone_as_the_pdu_is_written_fails_the_send_as_maybe_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, termios.error killed the AT thread without failing the command: send() awaited it forever,
    with the command lock held, and the outbox dispatcher stopped sending on every channel."""
    monkeypatch.setattr(at.serial, "Serial", UnpluggedDuringThePdu)
    lost: queue.Queue[str] = queue.Queue()
    p = AtPort("/dev/ttyGONE", on_urc=lambda _u: None, on_lost=lost.put)
    p.start().result(5)
    try:
        pending = p.submit("AT+CMGS=44", 5, pdu="00", prompt_timeout=2)
        with pytest.raises(AtPortError, match="port lost") as info:
            pending.result(10)
        assert info.value.submitted  # the modem had the PDU: it may have sent it
        assert "port lost" in lost.get(timeout=5)  # the notifier is told, and reopens the port
        assert not p.alive
    finally:
        p.close()
