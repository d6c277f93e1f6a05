"""`coldchain demo --centers N`: a region on one machine, started and stopped by itself.

It starts Mosquitto and a throwaway PostgreSQL (`hub/local_peers.py`), one hub worker and the hub's pages, and N
simulated centers (each `coldchain demo` with its own site id, journal, page and an `mqtt_uplink` sink to the
broker). Then one lot moves along them as people would do it, over each box's HTTP API: checked in at the first,
shipped to the next and received there under the same code, and so on. The boxes are separate processes driven
only through their API and the MQTT contract, so this module imports nothing of the daemon (docs/hub.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from hub.local_peers import APT_LINE, Broker, Postgres, free_port, missing
from hub.texts import t

NAMES = [("草堂镇冷库", 31.02, 109.46), ("万州中转库", 30.81, 108.41), ("重庆配送中心", 29.56, 106.55),
         ("涪陵冷库", 29.70, 107.39), ("永川冷库", 29.36, 105.93)]
TOKEN = {"Authorization": "Bearer demo-staff"}  # the shipped demo config's staff token (config/demo.yaml)


def box_config(base: dict[str, Any], i: int, broker_port: int) -> dict[str, Any]:
    """The demo center's config as center `i` of the region: its own site, and an uplink to the broker."""
    cfg: dict[str, Any] = json.loads(json.dumps(base))
    name, lat, lon = NAMES[i % len(NAMES)]
    cfg["site"] |= {"id": f"center-{i + 1}", "name": name, "location": {"lat": lat, "lon": lon}}
    for zone in cfg["zones"]:
        zone["capacity"] = {"value": 40, "unit": "t"}
    cfg["sinks"] = [{"id": "region", "type": "mqtt_uplink", "host": "127.0.0.1", "port": broker_port,
                     "keepalive": 10}]
    return cfg


VEHICLE = ("truck-1", "渝A-12345 冷藏车")  # by its plate: the public trace page shows it, never a driver's name


def vehicle_config(base: dict[str, Any], broker_port: int, setpoint: float = 6.5) -> dict[str, Any]:
    """A reefer truck running the same daemon (`site.kind: vehicle`): one compartment, one simulated probe at
    `setpoint`, the base's contacts and tokens, and an uplink to the broker (docs/transfers.md, A vehicle box)."""
    cfg: dict[str, Any] = json.loads(json.dumps(base))
    site, name = VEHICLE
    cfg["site"] |= {"id": site, "name": name, "kind": "vehicle"}
    cfg["site"].pop("location", None)  # it moves; the hub's map is for centers
    cfg["zones"] = [{"id": "reefer", "name": "冷藏厢", "name_en": "Reefer box", "commodity": "mandarin"}]
    cfg["sensors"] = [{"id": "reefer-t1", "zone": "reefer", "type": "simulated", "interval": "1m",
                       "setpoint": setpoint, "differential": 0.5, "noise": 0.05, "seed": 7}]
    cfg["sinks"] = [{"id": "region", "type": "mqtt_uplink", "host": "127.0.0.1", "port": broker_port,
                     "keepalive": 10}]
    return cfg


def call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=TOKEN | {
        "Content-Type": "application/json"}, data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback, our own box)
        out: dict[str, Any] = json.loads(resp.read() or b"{}")
    return out


def wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"timed out waiting for {what}")


class Region:
    """The processes of one demo region; `stop()` ends them in reverse order."""

    def __init__(self, root: Path, base_config: Path, speed: float) -> None:
        self.root, self.speed = root, speed
        self.base = yaml.safe_load(base_config.read_text(encoding="utf-8"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.boxes: list[tuple[str, int]] = []  # (site, page port)
        self.owned: list[Broker | Postgres] = []  # peers this region started (not a test session's)
        self.broker_port, self.dsn = 0, ""
        self.epoch = time.time()  # the boxes' simulated clocks agree: epoch + (wall - epoch) * speed

    def start_peers(self) -> None:
        """Mosquitto and PostgreSQL of its own, with the hub's database."""
        import psycopg

        broker = Broker(self.root / "mosquitto")
        self.owned.append(broker)
        broker.start()
        pg = Postgres()
        self.owned.append(pg)
        pg.start()
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE hub")
        self.broker_port, self.dsn = broker.port, pg.dsn("hub")

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_hub(self, port: int) -> None:
        """One hub worker and the hub's pages on `port`, on the region's broker and database."""
        import psycopg

        from hub import store

        with psycopg.connect(self.dsn) as conn:
            store.create(conn)
        self.spawn("hub-worker", ["-m", "hub", "--dsn", self.dsn, "worker", "--broker",
                                  f"127.0.0.1:{self.broker_port}", "--client-id", "demo-hub-1"])
        self.spawn("hub-web", ["-m", "hub", "--dsn", self.dsn, "serve", "--port", str(port)])
        wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200,
             60, "the hub's pages")

    def start_box(self, i: int, port: int, cfg: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
        """Center `i` of the region (`box_config`), or the box `cfg` (a vehicle: `vehicle_config`)."""
        cfg = cfg or box_config(self.base, i, self.broker_port)
        site = cfg["site"]["id"]
        folder = self.root / site
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), "utf-8")
        proc = self.spawn(site, ["-m", "daemon", "demo", "--config", str(folder / "config.yaml"), "--data-dir",
                                 str(folder), "--port", str(port), "--speed", f"{self.speed:g}",
                                 "--epoch", f"{self.epoch:.3f}"])
        self.boxes.append((site, port))
        return proc

    def wait_boxes(self) -> None:
        for site, port in self.boxes:
            wait(lambda port=port: urllib.request.urlopen(  # type: ignore[misc]
                f"http://127.0.0.1:{port}/healthz", timeout=2).status < 500, 90, f"{site}'s page")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for peer in reversed(self.owned):
            peer.stop()


def move_lot(region: Region, code: str, pause: float, say: Callable[..., None],
             route: Sequence[tuple[str, int]] | None = None) -> None:
    """Check `code` in at the first box of `route` (default: the boxes in order), then ship it to each next one,
    which receives it under the same code (on the vehicle box: into its compartment)."""
    (first, port), *rest = route or region.boxes
    call(port, "POST", "/api/v1/lots", {"code": code, "commodity": "mandarin", "zone": "mandarin",
                                        "quantity": 1200, "unit": "kg", "origin": "草堂镇"})
    say("demo.checked_in", code=code, site=first)
    here, here_port = first, port
    for site, port in rest:
        time.sleep(pause)
        call(here_port, "POST", f"/api/v1/lots/{code}/checkout", {"destination": site})
        call(port, "POST", "/api/v1/lots", {"code": code, "commodity": "mandarin",
                                            "zone": "reefer" if site == VEHICLE[0] else "mandarin",
                                            "quantity": 1200, "unit": "kg", "source": here})
        say("demo.shipped", code=code, source=here, site=site)
        here, here_port = site, port


def hub_view(dsn: str, code: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the centers and vehicles, the stays and vehicle legs of `code`) as the hub has them in PostgreSQL."""
    import psycopg

    from hub import queries

    with psycopg.connect(dsn) as conn:
        return queries.centers(conn), [leg for leg in queries.chain(conn, code).legs if leg["kind"] != "transit"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coldchain demo --centers N", description="a region: N centers and a hub")
    p.add_argument("--centers", type=int, default=3)
    p.add_argument("--base-config", required=True, help="the demo center's config (coldchain passes it)")
    p.add_argument("--port", type=int, default=8090, help="the hub's page; the centers' pages follow it")
    p.add_argument("--data-dir", help="folder for journals and logs (default: a new temp folder)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    p.add_argument("--pause", type=float, default=5.0, help="real seconds a lot stays at each center")
    p.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN")
    p.add_argument("--vehicle", action="store_true", help="a reefer truck box carries the lot from the first "
                   "center to the second (docs/transfers.md, A vehicle box)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    say = lambda key, **kw: print(t(args.lang, key, **kw), flush=True)  # noqa: E731
    lacking = missing()
    if lacking:
        print(t(args.lang, "demo.missing", what=", ".join(lacking), apt=APT_LINE), file=sys.stderr)
        return 2
    if not 2 <= args.centers <= len(NAMES):
        print(t(args.lang, "demo.centers", most=len(NAMES)), file=sys.stderr)
        return 2
    root = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="coldchain-region-"))
    root.mkdir(parents=True, exist_ok=True)
    region = Region(root, Path(args.base_config), args.speed)
    started = time.monotonic()
    try:
        return _run(region, args, say, started)
    except (RuntimeError, OSError) as exc:
        print(t(args.lang, "demo.failed", error=exc, logs=root), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        region.stop()


def _run(region: Region, args: argparse.Namespace, say: Callable[..., None], started: float) -> int:
    hub_port = args.port or free_port()
    region.start_peers()
    region.start_hub(hub_port)
    for i in range(args.centers):
        region.start_box(i, free_port() if not args.port else args.port + 1 + i)
    if args.vehicle:
        region.start_box(args.centers, free_port() if not args.port else args.port + 1 + args.centers,
                         vehicle_config(region.base, region.broker_port))
    region.wait_boxes()
    say("demo.hub_page", url=f"http://127.0.0.1:{hub_port}/")
    for site, port in region.boxes:
        say("demo.vehicle_page" if site == VEHICLE[0] else "demo.box_page", site=site, url=f"http://127.0.0.1:{port}/")
    say("demo.logs", folder=region.root)
    code = "RG-0001"
    route = region.boxes[:1] + region.boxes[args.centers:] + region.boxes[1:args.centers]  # the truck second
    move_lot(region, code, args.pause, say, route)
    sites = [site for site, _ in route]
    wait(lambda: [leg["site"] for leg in hub_view(region.dsn, code)[1]] == sites, 60, "the hub's chain")
    centers, stays = hub_view(region.dsn, code)
    say("demo.chain", code=code, url=f"http://127.0.0.1:{hub_port}/trace/{code}",
        stays=" -> ".join(f"{leg['site']}/{leg['zone']}" for leg in stays))
    say("demo.centers_line", centers=", ".join(f"{c['site']} {c['state']}" for c in centers))
    while args.duration is None or time.monotonic() - started < args.duration:
        time.sleep(0.5)
    return 0
