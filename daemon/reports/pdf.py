"""Print an HTML page to PDF with headless Chromium (Debian package `chromium`).

No PDF library is needed on the box: the report is a print-ready HTML page and Chromium's
`--print-to-pdf` lays it out, with CJK glyphs from `fonts-wqy-zenhei`. Each run gets its
own throw-away profile, so it never touches a desktop user's browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw")


class PdfError(RuntimeError):
    """Chromium is missing or did not produce a PDF; the message says which and why."""


def find_chromium() -> str:
    """Path of a Chromium binary: $COLDCHAIN_CHROMIUM or the first one on PATH."""
    env = os.environ.get("COLDCHAIN_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise PdfError("no Chromium found for PDF output: install the Debian package `chromium` "
                   "(and `fonts-wqy-zenhei` for Chinese text), or use --format html/csv")


def html_to_pdf(page: str, out: Path, *, chromium: str | None = None, timeout: float = 120.0) -> Path:
    """Write `page` (a complete HTML document) as a PDF to `out`; returns `out`."""
    exe = chromium or find_chromium()
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="coldchain-pdf-") as tmp:
        src = Path(tmp) / "report.html"
        src.write_text(page, encoding="utf-8")
        cmd = [exe, *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}", f"--print-to-pdf={out}", src.as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfError(f"{exe}: {exc}") from exc
    if not out.is_file() or out.stat().st_size == 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise PdfError(f"{exe} exited {res.returncode} without writing {out}: {' / '.join(tail)}")
    return out
