"""Config of the GSM/4G modem notifier: port and line settings, SIM, SMS options, timeouts and recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from daemon.ports.durations import Duration
from daemon.ports.notify import NotifierBase


class GsmModemConfig(NotifierBase):
    """A SIM800 / Quectel EC2x (or any 27.005 modem) on a serial port, sending SMS in PDU mode."""

    type: Literal["gsm_modem"]
    port: str = Field(default="/dev/ttyUSB2", description="serial device of the modem's AT port")
    baudrate: Literal[9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600] = Field(
        default=115200, description="line speed (USB modems ignore it)"
    )
    rtscts: bool = Field(default=False, description="hardware flow control (RTS/CTS wired)")
    xonxoff: bool = Field(default=False, description="software flow control; SIM800 on a Pi UART needed it")
    pin_file: Path | None = Field(
        default=None, description="file holding the SIM PIN (mode 0600); None = the SIM has no PIN"
    )
    smsc: str | None = Field(
        default=None, pattern=r"^\+[0-9]{3,20}$",
        description="SMS centre number put in each PDU; None = the one stored on the SIM",
    )
    request_delivery_reports: bool = Field(default=True, description="ask the network for a status report (SRR)")
    validity: Duration | None = Field(
        default=86400.0, gt=0, description="how long the SMS centre keeps trying; None = network default"
    )
    command_timeout: Duration = Field(default=5.0, gt=0, description="answer time for an ordinary AT command")
    send_timeout: Duration = Field(default=60.0, gt=0, description="answer time for AT+CMGS once the PDU is sent")
    max_timeouts: int = Field(default=3, ge=1, description="consecutive timeouts before the modem is reset")
    reset_wait: Duration = Field(default=20.0, ge=0, description="pause after AT+CFUN=1,1 before reopening")
    reopen_backoff: Duration = Field(default=2.0, gt=0, description="first wait before reopening a lost port")
    reopen_backoff_max: Duration = Field(default=300.0, gt=0, description="longest wait between reopen attempts")
    partial_reply_timeout: Duration = Field(
        default=3600.0, gt=0, description="hand over a multi-part reply with parts missing after this long"
    )
    health_interval: Duration = Field(default=300.0, gt=0, description="how often registration and signal are read")
