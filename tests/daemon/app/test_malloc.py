"""A sign-in's argon2id hash (19 MiB) must not stay resident: daemon/app/malloc.py fixes glibc's mmap threshold,
which glibc otherwise raises to 19 MiB after the first hash so that every later one is kept in an arena."""

from __future__ import annotations

import subprocess
import sys

from daemon.app.malloc import fix_mmap_threshold, glibc

CODE = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from daemon.app.malloc import fix_mmap_threshold
from daemon.api.passwords import hash_password, verify

def rss_kb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS'))

fixed = fix_mmap_threshold() if sys.argv[1] == 'fixed' else None
h = hash_password('a long password')
before = rss_kb()
with ThreadPoolExecutor(4) as pool:
    ok = list(pool.map(lambda _: verify(h, 'a long password'), range(8)))
print(fixed, all(ok), (rss_kb() - before) // 1024)
"""


def grown_mb(mode: str) -> tuple[str, str, int]:
    out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True)
    fixed, ok, grown = out.stdout.split()
    return fixed, ok, int(grown)


def test_sign_ins_do_not_keep_argon2s_memory() -> None:
    assert fix_mmap_threshold() is glibc()
    if not glibc():
        return  # musl, macOS: nothing to fix, nothing done (CI and the Pi run glibc)
    fixed, ok, grown = grown_mb("fixed")
    assert (fixed, ok) == ("True", "True") and grown < 5, grown
    # the control: glibc's own adjustment keeps 19 MiB per arena that verified (4 threads: 38-95 MB)
    _, ok, grown = grown_mb("default")
    assert ok == "True" and grown >= 19, grown
