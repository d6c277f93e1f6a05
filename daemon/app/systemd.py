"""sd_notify without a dependency: READY/STOPPING/STATUS and watchdog pings to systemd.

Only the datagram protocol on $NOTIFY_SOCKET (sd_notify(3)); a no-op when not under systemd.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send one notification; False when not running under systemd (or the socket is gone)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between pings (half of WatchdogSec), or None when no watchdog is set for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
