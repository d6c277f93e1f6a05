"""Give freed heap back to the kernel (issue 13: resident memory <= 60 MB on a Raspberry Pi class box).

Start-up parses the config, builds pydantic validators and imports drivers: a few MB of short-lived
objects among long-lived ones. CPython frees them, but glibc keeps the freed pages in its arenas
until `malloc_trim` is asked, so they count in RSS for the life of the process. Measured on a
200-sensor config: 0.5-1.4 MB back after start-up (docs/benchmarks.md, 4b)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

log = logging.getLogger("coldchain.heap")


def _trimmer() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        fn = getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None
    if fn is None:
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn  # type: ignore[no-any-return]


_TRIM = _trimmer()


def release(collect: bool = True) -> bool:
    """Collect garbage cycles (if `collect`), then return free heap pages to the kernel.

    True if the C library released something. ctypes drops the GIL for the call, so a thread may run it."""
    if collect:
        gc.collect()
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
