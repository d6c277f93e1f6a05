"""`coldchain report --verify FILE`: is this copy of a report what the journal says?

A PDF is read back with `pdftotext` (poppler-utils): its `coldchain-verify` line names the zone, the period and
the second it was generated; the report's data is built again from the journal as it stood then
(`pdf_doc.signed_data`) and its SHA-256 compared with the one printed. A JSON copy (`--format json`) carries its
data and hash: the hash is checked against the embedded data (was the copy edited?) and against the journal.
Exit 0: it matches; 1: it does not (the message says which check failed); 2: not a report copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from daemon.config.schema import AppConfig
from daemon.reports.compliance import ReportError, compliance
from daemon.reports.pdf_doc import HASH_RX, VERIFY_RX, digest, signed_data
from daemon.storage.journal import Journal


@dataclass(frozen=True, slots=True)
class Claim:
    """What a copy says about itself: which report, and its hash."""

    zone: str
    start: float
    end: float
    generated: float
    sha256: str
    embedded_ok: bool | None = None  # JSON copies: does the hash match the data they carry


def read_claim(path: Path) -> Claim:
    """The claim of a PDF or JSON copy; ReportError if the file is neither."""
    if path.suffix.lower() == ".json":
        try:
            signed = json.loads(path.read_text(encoding="utf-8"))["signed"]
            data, sha = signed["data"], str(signed["sha256"])
            p = data["period"]
            return Claim(data["zone"]["id"], float(p["start"]), float(p["end"]), float(data["generated"]), sha,
                         digest(data) == sha)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"{path}: not a JSON report copy with signed data ({exc})") from None
    text = _pdf_text(path)
    found, hashed = VERIFY_RX.search(text), HASH_RX.search(text)
    if found is None or hashed is None:
        raise ReportError(f"{path}: no coldchain-verify line and SHA-256 found; is it a coldchain report?")
    return Claim(found.group(1), float(found.group(2)), float(found.group(3)), float(found.group(4)),
                 hashed.group(1))


def _pdf_text(path: Path) -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        raise ReportError("pdftotext not found: install the Debian package poppler-utils")
    res = subprocess.run([exe, "-layout", str(path), "-"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ReportError(f"{path}: pdftotext failed: {res.stderr.strip()[-200:]}")
    return res.stdout


def journal_digest(cfg: AppConfig, claim: Claim) -> str:
    """The hash of the same report built again from the journal, as it stood at `claim.generated`."""
    if not cfg.storage.journal.is_file():
        raise ReportError(f"no journal at {cfg.storage.journal}")
    journal = Journal(cfg.storage.journal)
    try:
        rep = compliance(journal, cfg, claim.zone, claim.start, claim.end, claim.generated)
    finally:
        journal.close()
    return digest(signed_data(rep, cfg))


def verify(cfg: AppConfig, path: Path) -> tuple[int, str]:
    """(exit code, message) for `coldchain report --verify`."""
    try:
        claim = read_claim(path)
        if claim.embedded_ok is False:
            return 1, f"{path}: MODIFIED: the data in the copy does not match its SHA-256 {claim.sha256}"
        again = journal_digest(cfg, claim)
    except ReportError as exc:
        return 2, str(exc)
    if again != claim.sha256:
        return 1, (f"{path}: DOES NOT MATCH the journal: printed {claim.sha256}, journal gives {again} "
                   f"(zone {claim.zone}); the copy was altered, or readings of the period changed since")
    return 0, f"{path}: OK, matches the journal (zone {claim.zone}, SHA-256 {claim.sha256})"
