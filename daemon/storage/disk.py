"""Free disk under the journal, for the reserve, the box-health alarm and doctor."""

from __future__ import annotations

import shutil
from pathlib import Path


def free_mb(path: Path) -> float:
    """Free space (MB) on the filesystem holding `path` (its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free / 1e6
