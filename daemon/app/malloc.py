"""glibc's malloc told to hand big blocks back to the kernel once they are freed.

glibc starts by serving blocks of 128 KiB and more with mmap, and frees them with munmap. But when such a block
is freed it raises that threshold to the block's size (up to 32 MiB) and its heap-trim threshold to twice that.
A sign-in hashes the password with argon2id in 19 MiB (daemon/api/passwords.py). After the first one, every later
hash took its 19 MiB from a malloc arena and the arena kept it: measured in one process, RSS 47 -> 66 MB at the
first verify, 85 MB once a thread had verified too, 104 MB after 8 verifies on 4 threads with the unit's
`MALLOC_ARENA_MAX=2` (142 MB without it). Setting the threshold fixes it at glibc's own 128 KiB, which turns
the adjustment off: the same 8 verifies leave RSS at 47.5 MB (tests/daemon/app/test_malloc.py).
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("coldchain.malloc")

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value (DEFAULT_MMAP_THRESHOLD_MIN)


def glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # not a glibc system (musl, macOS)
        return False


def fix_mmap_threshold() -> bool:
    """Fix the threshold (glibc only; elsewhere nothing is done). True if glibc took it."""
    if not glibc():
        return False
    try:
        done = bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        done = False
    if not done:
        log.warning("malloc: could not fix glibc's mmap threshold; a sign-in may keep 19 MB of RSS per arena")
    return done
