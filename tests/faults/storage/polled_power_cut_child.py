"""Child of test_commit_window.py: the real Daemon with simulated (polled) sensors and a short commit window.
Prints `accepted <sensor> <ts_ms> <quantity>` for every reading the live view gets, which happens when the
pipeline accepts it, before its commit; so the parent knows what the page showed before the kill."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from daemon.app.plugins import load_config
from daemon.app.runtime import Daemon
from daemon.ports.model import Reading


async def main(config: Path) -> None:
    d = Daemon(load_config(config))
    update = d.live.update

    def shown(readings: Sequence[Reading]) -> None:
        update(readings)
        for r in readings:
            sys.stdout.write(f"accepted {r.sensor} {round(r.ts * 1000)} {r.quantity.value}\n")
        sys.stdout.flush()

    d.live.update = shown  # type: ignore[method-assign]
    await d.start()
    print("ready", flush=True)
    await d.wait()
    await d.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
