"""Checks of the box itself: free disk under the journal, clock synchronised."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
from pathlib import Path

TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"


def free_mb(path: Path) -> float:
    """Free space (MB) on the filesystem holding `path` (its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free / 1e6


def clock_synchronised() -> bool | None:
    """True/False from the kernel's NTP state (chrony, ntpd and timesyncd all set it); None if unknown."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != TIME_ERROR)
