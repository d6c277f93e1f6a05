"""Which wheels an installed environment holds, and which were compiled on the box (no wheel on the index).

Run by tests/arm/check.sh with the environment's own Python inside the emulated root."""

from __future__ import annotations

import sysconfig
from pathlib import Path

LOCAL = ("linux_armv7l", "linux_aarch64", "linux_x86_64")  # a platform tag pip gives a wheel it built itself


def main() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    for info in sorted(site.glob("*.dist-info")):
        meta = dict(ln.split(": ", 1) for ln in (info / "METADATA").read_text().splitlines() if ": " in ln)
        tags = [ln.split(": ", 1)[1] for ln in (info / "WHEEL").read_text().splitlines() if ln.startswith("Tag: ")]
        built = "  (built here from the sdist)" if any(t.endswith(LOCAL) for t in tags) else ""
        print(f"  {meta.get('Name')} {meta.get('Version')}: {', '.join(tags)}{built}")


if __name__ == "__main__":
    main()
